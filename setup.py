"""The C extension streamserver.native._native (issue 17); everything else is in pyproject.toml.

It links to the system's libsrtp2 (Debian: libsrtp2-dev, installed by .ci/dev and the
Dockerfile). SCENELINK_NO_EXTENSIONS=1 at build time builds without it, as at run time it
selects the pure-Python path (streamserver.native).
"""

import os
import subprocess

from setuptools import Extension, setup


def srtp_flags(option: str) -> list[str]:
    """pkg-config's flags for libsrtp2, or the plain library name where it has no .pc file."""
    try:
        out = subprocess.run(
            ["pkg-config", option, "libsrtp2"], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return ["-lsrtp2"] if option == "--libs" else []
    return out.split()


native = Extension(
    "streamserver.native._native",
    sources=["streamserver/native/_native.c", "streamserver/native/assembler.c"],
    depends=["streamserver/native/native.h"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror", *srtp_flags("--cflags")],
    extra_link_args=srtp_flags("--libs"),
)

no_extensions = os.environ.get("SCENELINK_NO_EXTENSIONS", "") not in ("", "0")
setup(ext_modules=[] if no_extensions else [native])
