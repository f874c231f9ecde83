"""Disclosure packages: the original bundles, as stored, with what a court needs to trust them.

A package is one zip (stored, not compressed: media does not shrink and the bytes stay as
they were) holding ``sessions/<id>/`` (every object of each bundle, byte for byte), each
bundle's audit extract, a continuity statement, ``VERIFY.txt``, the server's key set, and
``export.json`` listing every file with its SHA-256, signed as ``export.jws``. ``scenelink
verify`` checks the package signature, every listed file, and then every bundle inside.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .catalogue import CatalogueEntry
from .chain import canonical
from .derivatives import LOG_FILE, DerivativeLog, check_log
from .manifest import JWKS_FILE, Signer, verify_jws
from .nodes import trusted_jwks
from .store import EvidenceStore
from .verify import Report, VerifyError, verify_bundle

EXPORT_JSON = "export.json"
EXPORT_JWS = "export.jws"
FORMAT = "scenelink-export/1"
Progress = Callable[[int, int], None]

VERIFY_TEXT = """\
How to verify this package
==========================

1. Unzip it into an empty folder.
2. With SceneLink installed (the version named in export.json or later), run:

       scenelink verify <folder> --jwks <the force's published key set>

   The published key set is served by the force's SceneLink server at
   /.well-known/jwks.json. A copy is in jwks.json here; if you use that copy instead,
   compare its key id ("kid") with the one the force publishes.

What is checked: the signature of export.json (export.jws); the SHA-256 of every file it
lists; then for each session folder, the signed manifest, the hash chain over segments,
events and location fixes, every segment's SHA-256, and that every segment decodes; then for
each folder under derivatives/ (a redacted copy or a clip), that its files match the SHA-256
in its derivative-log.json and that the master parts the log names are the session's own, by
the SHA-256 in its signed manifest. The log says who made it, when, why, and what was hidden.
Any failure is named and the command exits non-zero.

Without SceneLink: every file's SHA-256 is listed in export.json (compare with
`sha256sum`); the media files are Matroska and play in VLC or ffplay.
"""


@dataclass(frozen=True, slots=True)
class ExportRequest:
    export_id: str
    requested_by: str
    recipient: str
    purpose: str
    requested_at: datetime


def continuity_statement(
    request: ExportRequest,
    entries: Sequence[CatalogueEntry],
    store_name: str,
    key_id: str,
    audit: Mapping[str, Sequence[Mapping[str, Any]]],
    derivatives: Sequence[DerivativeLog] = (),
) -> str:
    lines = [
        "Continuity statement",
        "====================",
        "",
        f"Export {request.export_id} was made by {request.requested_by} on "
        f"{request.requested_at.isoformat()} for {request.recipient} ({request.purpose}).",
        "",
        f"The material below was copied byte for byte from the SceneLink evidence store "
        f"({store_name}). It is the media exactly as the caller's phone sent it (never "
        "re-encoded), with the location trail and session events, each bundle hashed at "
        f"capture, hash-chained and signed with the server key {key_id}.",
        "",
    ]
    for entry in entries:
        records = audit.get(entry.session_id, [])
        lines += [
            f"Session {entry.session_id} (incident {entry.incident_ref or 'none'})",
            f"  recorded from {entry.started_at.isoformat()}, {entry.media_seconds:.1f} s of "
            f"media in {len(entry.segments)} segments, {len(entry.positions)} location fixes",
            f"  chain head {entry.chain_head}",
            f"  handled by: {', '.join(sorted({str(r['actor']) for r in records})) or 'none'}"
            " (every access is listed in audit-extract.jsonl)",
            "",
        ]
    for log in derivatives:
        what = "a redacted copy" if log["kind"] == "redaction" else "a clip"
        lines += [
            f"Derivative {log['derivative_id']}: {what} of session {log['session_id']}, "
            f"{log['start_s']:.1f} s to {log['end_s']:.1f} s, made by {log['made_by']} on "
            f"{log['made_at']} because: {log['reason']}",
            f"  {log['method']}",
            "  it is not the original: derivative-log.json names the original parts' SHA-256 "
            "and what was hidden",
            "",
        ]
    return "\n".join(lines) + "\n"


def build_package(
    store: EvidenceStore,
    signer: Signer,
    request: ExportRequest,
    entries: Sequence[CatalogueEntry],
    audit: Mapping[str, Sequence[Mapping[str, Any]]],
    out: Path,
    progress: Progress | None = None,
    derivatives: Sequence[Path] = (),
) -> Path:
    """Blocking. Writes the zip to ``out`` (via a temporary name) and returns it.
    ``derivatives`` are folders of redacted copies or clips (``recorder.derivatives``)."""
    keys = [(e, key) for e in entries for key in store.list(e.prefix + "/")]
    # Sizes come from the objects themselves as they are fetched; the manifests give a total.
    total = sum(s.bytes for e in entries for s in e.segments) or 1
    done = 0
    files: dict[str, dict[str, Any]] = {}
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:

        def add(name: str, data: bytes) -> None:
            zf.writestr(name, data)
            files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}

        for entry, key in keys:
            data = store.get(key)
            add(f"sessions/{entry.session_id}/{key[len(entry.prefix) + 1 :]}", data)
            done += len(data)
            if progress is not None:
                progress(min(done, total), total)
        for entry in entries:
            extract = b"".join(canonical(dict(r)) + b"\n" for r in audit.get(entry.session_id, []))
            add(f"sessions/{entry.session_id}/audit-extract.jsonl", extract)
        logs: list[DerivativeLog] = []
        for folder in derivatives:
            log: DerivativeLog = json.loads((folder / LOG_FILE).read_bytes())
            for name in [LOG_FILE] + [o["name"] for o in log["outputs"]]:
                add(f"derivatives/{log['derivative_id']}/{name}", (folder / name).read_bytes())
            logs.append(log)
        statement = continuity_statement(request, entries, store.name, signer.kid, audit, logs)
        add("continuity-statement.txt", statement.encode())
        add("VERIFY.txt", VERIFY_TEXT.encode())
        add(JWKS_FILE, canonical(trusted_jwks(signer.jwks(), store)))  # every node's key
        index = {
            "format": FORMAT,
            "export_id": request.export_id,
            "requested_by": request.requested_by,
            "recipient": request.recipient,
            "purpose": request.purpose,
            "requested_at": request.requested_at.isoformat(),
            "signed_at": datetime.now(UTC).isoformat(),
            "sessions": [
                {"session_id": e.session_id, "incident_ref": e.incident_ref} for e in entries
            ],
            "derivatives": [
                {
                    "derivative_id": d["derivative_id"],
                    "session_id": d["session_id"],
                    "kind": d["kind"],
                }
                for d in logs
            ],
            "files": files,
            "key_id": signer.kid,
        }
        zf.writestr(EXPORT_JSON, json.dumps(index, indent=1))
        zf.writestr(EXPORT_JWS, signer.sign(index))
    tmp.replace(out)
    if progress is not None:
        progress(total, total)
    return out


def is_package(folder: Path) -> bool:
    return (folder / EXPORT_JWS).exists()


def verify_package(
    folder: Path, jwks: dict[str, Any] | None = None, decode: bool = True
) -> list[Report]:
    """Raises VerifyError naming the first failure; one report per bundle otherwise."""
    own_key = jwks is None
    if jwks is None:
        jwks = json.loads((folder / JWKS_FILE).read_bytes())
    try:
        index = verify_jws((folder / EXPORT_JWS).read_text().strip(), jwks)
    except Exception as exc:
        raise VerifyError(f"{EXPORT_JWS}: signature does not verify: {exc}") from exc
    copy = folder / EXPORT_JSON
    try:
        same = json.loads(copy.read_bytes()) == index
    except (OSError, ValueError):
        same = False
    if not same:
        raise VerifyError(f"{EXPORT_JSON}: differs from the signed index ({EXPORT_JWS})")
    listed: dict[str, dict[str, Any]] = index.get("files", {})
    for name, info in listed.items():
        path = folder / name
        if not path.is_file():
            raise VerifyError(f"{name}: missing from the package")
        if hashlib.sha256(path.read_bytes()).hexdigest() != info["sha256"]:
            raise VerifyError(f"{name}: SHA-256 does not match export.json")
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and name not in listed and name not in (EXPORT_JSON, EXPORT_JWS):
            raise VerifyError(f"{name}: not listed in the signed export.json")
    reports = []
    for session in index.get("sessions", []):
        sid = str(session["session_id"])
        try:
            report = verify_bundle(folder / "sessions" / sid, jwks, decode)
        except VerifyError as exc:
            raise VerifyError(f"session {sid}: {exc}") from exc
        if own_key:
            report.notes.append(
                "key taken from the package itself: compare its key id with the published one"
            )
        reports.append(report)
    by_session = {r.session_id: r for r in reports}
    for derivative in index.get("derivatives", []):
        did, sid = str(derivative["derivative_id"]), str(derivative["session_id"])
        if sid not in by_session:
            raise VerifyError(f"derivative {did}: its session {sid} is not in the package")
        masters = {p.name: p.sha256 for p in by_session[sid].parts}  # every node's parts
        try:
            log = check_log(folder / "derivatives" / did, masters)
        except (OSError, ValueError, KeyError) as exc:
            raise VerifyError(f"derivative {did}: {exc}") from exc
        by_session[sid].notes.append(
            f"{log['kind']} {did}: {len(log['outputs'])} file(s) match its log, made from "
            f"{len(log['masters'])} original part(s) of this session"
        )
    return reports
