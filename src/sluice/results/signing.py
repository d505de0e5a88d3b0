"""HMAC signatures on pickled results, so a tampered store cannot run code.

Unpickling runs code chosen by whoever wrote the bytes. Every pickled blob
Sluice writes is prefixed with an HMAC-SHA256 of its content under a key kept
in ``$SLUICE_HOME/results.key`` (created on first use, readable only by its
owner) or given as ``SLUICE_RESULTS_SIGNING_KEY``; a blob whose signature does
not match is refused before ``pickle`` ever sees it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from sluice.errors import ResultIntegrityError

_MAGIC = b"SLS1"
_DIGEST = 32


def load_signing_key(home: Path, environ: dict[str, str] | None = None) -> bytes:
    """The signing key: from the environment, else the home folder's key file."""
    env = os.environ if environ is None else environ
    configured = env.get("SLUICE_RESULTS_SIGNING_KEY")
    if configured:
        return configured.encode()
    path = home / "results.key"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    # O_EXCL: when two processes race to create the key, exactly one wins and
    # the other reads the winner's key instead of overwriting it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def sign(key: bytes, blob: bytes) -> bytes:
    """``blob`` with its signature prepended."""
    return _MAGIC + hmac.new(key, blob, hashlib.sha256).digest() + blob


def verify(key: bytes, signed: bytes, where: str) -> bytes:
    """The payload of a signed blob.

    Raises:
        ResultIntegrityError: the blob is unsigned or its signature does not match.
    """
    if not signed.startswith(_MAGIC) or len(signed) < len(_MAGIC) + _DIGEST:
        raise ResultIntegrityError(where, "it carries no Sluice signature")
    digest = signed[len(_MAGIC) : len(_MAGIC) + _DIGEST]
    blob = signed[len(_MAGIC) + _DIGEST :]
    expected = hmac.new(key, blob, hashlib.sha256).digest()
    if not hmac.compare_digest(digest, expected):
        raise ResultIntegrityError(
            where, "its signature does not match (tampered, or signed with another key)"
        )
    return blob
