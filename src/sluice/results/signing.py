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
    import tempfile  # once per store: the key file is made once

    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    # The key is written to a file of its own, then linked into place: the
    # link appears whole or not at all, and fails if another process linked
    # its key first (then that one is read). Creating the final file and
    # writing it after would let a racing process read it empty and sign
    # with an empty key.
    fd, draft = tempfile.mkstemp(dir=home, prefix=".results.key.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        os.link(draft, path)
    except FileExistsError:
        return path.read_bytes().strip()
    finally:
        os.unlink(draft)
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
