"""``scenelink verify`` and ``scenelink fixity`` (added to signalling.cli.main's parser)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from recorder.evidence import EvidenceSettings
from recorder.export import is_package, verify_package
from recorder.fixity import check_store
from recorder.manifest import Signer
from recorder.verify import Report, VerifyError, download_session, verify_target
from recorder.workingcopy import CopyMismatch, check_copy
from signalling.config import load_settings


def _evidence() -> EvidenceSettings:
    return EvidenceSettings.from_settings(load_settings())


def _server_jwks() -> dict[str, Any]:
    return Signer.load_or_create(_evidence().key_path).jwks()


def _verify(target: Path, jwks: dict[str, Any] | None, decode: bool) -> list[Report]:
    """A disclosure package (zip or unzipped folder), a bundle folder, or a session id."""
    if target.is_file() and zipfile.is_zipfile(target):
        with tempfile.TemporaryDirectory(prefix="scenelink-verify-") as tmp:
            with zipfile.ZipFile(target) as zf:
                zf.extractall(tmp)
            return verify_package(Path(tmp), jwks, decode)
    if target.is_dir() and is_package(target):
        return verify_package(target, jwks, decode)
    store = None if target.is_dir() else _evidence().open_store()
    return [verify_target(str(target), store, jwks, decode)]


def _check_copy(target: Path, copy: Path) -> int:
    """A playback working copy against the bundle folder, or the session fetched from the store."""
    if target.is_dir():
        return check_copy(copy, target)
    if target.is_file():
        raise VerifyError("--working-copy: give the bundle folder or the session id")
    with tempfile.TemporaryDirectory(prefix="scenelink-verify-") as tmp:
        return check_copy(copy, download_session(_evidence().open_store(), str(target), Path(tmp)))


def verify_command(args: argparse.Namespace) -> int:
    jwks = json.loads(Path(args.jwks).read_text()) if args.jwks else None
    try:
        reports = _verify(Path(args.target), jwks, decode=not args.no_decode)
        packets = _check_copy(Path(args.target), args.working_copy) if args.working_copy else 0
    except (VerifyError, CopyMismatch) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    for report in reports:
        for note in report.notes:
            print(f"note: {note}")
        print(
            f"OK: session {report.session_id} ({report.status}), {report.segments} segments, "
            f"{report.media_seconds:.1f} s of media, signed by key {report.key_id}"
        )
        if len(report.nodes) > 1:  # recorded by several nodes: each one's part and the gaps
            print(f"  nodes: {', '.join(n or '(first)' for n in report.nodes)}; keys: ", end="")
            print(", ".join(report.key_ids))
            for part in report.gaps:
                print(f"  gap: {part.gap_before_s:.1f} s before {part.name} (node {part.node_id})")
    if args.working_copy:
        print(f"OK: working copy {args.working_copy.name}: {packets} packets, the master's")
    return 0


def fixity_command(args: argparse.Namespace) -> int:
    jwks = json.loads(Path(args.jwks).read_text()) if args.jwks else _server_jwks()
    result = check_store(_evidence().open_store(), jwks)
    print(json.dumps(result, indent=1))
    return 1 if result["mismatches"] else 0


def add_commands(commands: Any) -> None:
    """Register the subcommands on an argparse subparsers object."""
    verify = commands.add_parser("verify", help="verify an evidence bundle (folder or session id)")
    verify.add_argument(
        "target",
        help="bundle folder, disclosure package (zip or folder), or a session id in the store",
    )
    verify.add_argument("--jwks", type=Path, help="the published key set (JWKS JSON file)")
    verify.add_argument("--no-decode", action="store_true", help="skip decoding the segments")
    verify.add_argument(
        "--working-copy",
        type=Path,
        help="also check a playback working copy (<data dir>/derivatives/<session>/*.mp4|.webm, "
        "its .json beside it): every packet the master's",
    )
    verify.set_defaults(run=verify_command)
    fixity = commands.add_parser("fixity", help="re-hash every stored object against manifests")
    fixity.add_argument("--jwks", type=Path, help="key set (default: this server's key)")
    fixity.set_defaults(run=fixity_command)
