"""Training data from a council's own mail: IMAP folders that map to departments.

Officers often already file enquiries into per-department folders; each folder's messages,
read without marking them seen, become labelled examples (subject plus the resident's own
words, the same preparation the classifier uses at run time).
"""

from __future__ import annotations

import difflib
import json
import ssl
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from classifiers.taxonomy import Taxonomy
from classifiers.text import prepare
from connectors.email_parser import EmailParseError, parse_email
from schemas.blobs import FilesystemBlobStore
from schemas.errors import OperatorError

BATCH = 100


def parse_folder_map(pairs: list[str], taxonomy: Taxonomy | None = None) -> dict[str, str]:
    """``["Bins=waste", "Roads/Potholes=highways"]`` → folder → department (one of ``taxonomy``'s)."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        folder, sep, department = pair.rpartition("=")
        if not sep or not folder.strip() or not department.strip():
            raise OperatorError(f"--folder-map {pair!r}: write it as FOLDER=department")
        department = department.strip()
        if taxonomy is not None and department not in taxonomy:
            close = difflib.get_close_matches(department, taxonomy.ids, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(taxonomy.ids)}"
            raise OperatorError(f"--folder-map {pair!r}: {department!r} is not a department in the taxonomy "
                                f"({taxonomy.source}); {hint}")
        mapping[folder.strip()] = department
    if not mapping:
        raise OperatorError("give at least one --folder-map FOLDER=department")
    return mapping


def export_imap(host: str, port: int, user: str, password: str, folder_map: Mapping[str, str], out: Path, *,
                tls: bool = True, limit: int = 0, progress: Callable[[str], None] | None = None) -> int:
    """Write one JSONL line ``{"text", "department", "folder"}`` per readable message; the count."""
    say = progress or (lambda _msg: None)
    written = 0
    try:
        context = ssl.create_default_context() if tls else None
        client = IMAPClient(host, port=port, ssl=tls, ssl_context=context, timeout=30)
    except (OSError, IMAPClientError) as exc:
        raise OperatorError(f"cannot reach IMAP server {host}:{port}: {exc}") from None
    try:
        try:
            client.login(user, password)
        except IMAPClientError as exc:
            raise OperatorError(f"IMAP login as {user} on {host} failed: {exc}") from None
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch, out.open("w", encoding="utf-8") as fh:
            blobs = FilesystemBlobStore(Path(scratch))
            for folder, department in folder_map.items():
                if not client.folder_exists(folder):
                    raise OperatorError(f"IMAP folder {folder!r} does not exist for {user} on {host}")
                client.select_folder(folder, readonly=True)  # read-only: nothing is marked seen
                uids = sorted(client.search(["ALL"]))
                if limit:
                    uids = uids[-limit:]
                kept = 0
                for start in range(0, len(uids), BATCH):
                    fetched = client.fetch(uids[start:start + BATCH], ["BODY.PEEK[]"])
                    for data in fetched.values():
                        raw = data.get(b"BODY[]")
                        if not raw:
                            continue
                        try:
                            message = parse_email(raw, blobs=blobs, mailbox=folder, store_raw=False)
                        except EmailParseError:
                            continue
                        body = message.body_trimmed if message.body_trimmed is not None else message.body_text
                        text = prepare(message.subject, body)
                        if text:
                            row = {"text": text, "department": department, "folder": folder}
                            fh.write(json.dumps(row) + "\n")
                            kept += 1
                say(f"{folder} → {department}: {kept} messages")
                written += kept
    finally:
        try:
            client.logout()
        except (OSError, IMAPClientError):
            pass
    if not written:
        raise OperatorError("the mapped IMAP folders hold no readable messages: nothing to train on")
    return written
