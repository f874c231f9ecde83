"""``scenelink``: the one entry point (serve, dev-cert, verify, fixity, retention, users)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

import uvloop

from signalling.cli.evidence import add_commands as add_evidence_commands
from signalling.cli.retention import add_commands as add_retention_commands
from signalling.cli.tls import write_dev_certificate
from signalling.cli.users import register as register_users
from signalling.cli.workers import default_workers, run_worker, supervise, worker_command
from signalling.config import load_settings
from signalling.ops.logs import configure_logging


def serve(args: argparse.Namespace) -> int:
    if args.config:
        os.environ["SCENELINK_CONFIG"] = str(args.config)
    settings = load_settings()
    configure_logging(args.log_level, settings.log_format, replace=True)  # a setting
    ssl_context = None
    if settings.tls_cert and settings.tls_key:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(settings.tls_cert, settings.tls_key)
    elif not settings.public_url or settings.public_url.startswith("http:"):
        logging.getLogger("scenelink").warning(
            "serving plain HTTP: phones only allow camera and location on HTTPS; put a TLS "
            "proxy in front, or set SCENELINK_TLS_CERT/KEY (try `scenelink dev-cert`)"
        )
    if not settings.public_url:
        logging.getLogger("scenelink").warning(
            "SCENELINK_PUBLIC_URL is not set: caller and officer links are refused unless the "
            "console is opened on localhost (development only)"
        )
    count = args.workers or default_workers(settings)
    if count > 1 and not settings.redis_url:
        refusal = "--workers above 1 needs Redis (REDIS_URL): workers find each other there"
        logging.getLogger("scenelink").error(refusal)
        return 2
    if count > 1:
        return supervise(settings, count, worker_command(args.config))
    uvloop.run(run_worker(settings, ssl_context, reuse_port=args.reuse_port))
    return 0


def dev_cert(args: argparse.Namespace) -> int:
    cert, key = write_dev_certificate(args.out, args.host)
    print(f"wrote {cert} and {key} (self-signed, for development only)")
    print(f"run: SCENELINK_TLS_CERT={cert} SCENELINK_TLS_KEY={key} scenelink serve")
    return 0


def _bench_runner(module: str) -> Callable[[argparse.Namespace], int]:
    """`scenelink load` / `scenelink bench`: the bench package's commands, arguments as is."""

    def run(args: argparse.Namespace) -> int:
        result: int = importlib.import_module(module).main(args.rest)
        return result

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scenelink", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the server")
    serve_cmd.add_argument("--config", type=Path, help="TOML configuration file")
    serve_cmd.add_argument(
        "--workers",
        type=int,
        help="worker processes (default SCENELINK_WORKERS, else one per core with Redis)",
    )
    serve_cmd.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve_cmd.set_defaults(run=serve)
    cert_cmd = commands.add_parser(
        "dev-cert", help="make a self-signed certificate for a phone on this network"
    )
    cert_cmd.add_argument("--out", type=Path, default=Path("scenelink-data/tls"))
    cert_cmd.add_argument(
        "--host",
        action="append",
        default=[],
        help="extra host name or IP address the phone will use (repeatable)",
    )
    cert_cmd.set_defaults(run=dev_cert)
    for name, module, text in (
        ("load", "bench.load", "synthetic callers and viewers against a running server"),
        ("bench", "bench.media", "media benchmark: start a server, run load, print a table"),
    ):
        # Everything after the command is the bench module's own (argparse.REMAINDER would
        # refuse a first argument that starts with "--"): parse_known_args passes it on.
        bench_cmd = commands.add_parser(name, help=text, add_help=False)
        bench_cmd.set_defaults(run=_bench_runner(module), takes_rest=True)
    add_evidence_commands(commands)  # verify, fixity
    add_retention_commands(commands)  # retention run, queue, check
    register_users(commands)
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "takes_rest", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    configure_logging(args.log_level)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
