"""Signatures that bind each stored result to the record it belongs to.

Unpickling runs code chosen by whoever wrote the bytes, and a value read
from the wrong row (a signed blob copied into another run's row) is as bad
as a forged one: a resume would hand another run's data to the next task.
So every persisted result, JSON or pickle, carries an HMAC-SHA256 (cut to
128 bits) over the identity of its *owner* (the task position and flow run,
the flow run, or the storage key of a result kept as a file), its
serializer and its bytes, under a key kept in ``$SLUICE_HOME/results.key``
(created on first use, readable only by its owner) or given as
``SLUICE_RESULTS_SIGNING_KEY``. A value whose signature does not match its
owner is refused before it is deserialized.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile  # once per store: the key file is made once
from pathlib import Path

from sluice.errors import ResultIntegrityError

#: hex digits of a signature (128 bits)
SIGNATURE_CHARS = 32
_BLOCK = 64  # SHA-256's block size


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


class Signer:
    """Signs and checks (owner, serializer, bytes) under one key.

    HMAC-SHA256 with its two padded key blocks hashed once: a signature then
    costs two hash copies instead of a fresh HMAC (it is computed for every
    persisted result, on the engine's hot path).
    """

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        padded = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def sign(self, owner: str, kind: str, payload: bytes) -> str:
        """The signature binding ``payload`` (serialized by ``kind``) to ``owner``."""
        named = owner.encode("utf-8", "surrogatepass")
        inner = self._inner.copy()
        # Lengths first: no owner can be made to run into the kind or the payload.
        inner.update(b"%d:%s:%s:" % (len(named), named, kind.encode()))
        inner.update(payload)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[: SIGNATURE_CHARS // 2].hex()

    def check(self, owner: str, kind: str, payload: bytes, signature: str) -> None:
        """Raise :class:`ResultIntegrityError` unless ``signature`` binds ``payload`` to
        ``owner``; nothing has been deserialized when it does."""
        expected = self.sign(owner, kind, payload)
        if not hmac.compare_digest(expected, signature):
            raise ResultIntegrityError(
                owner,
                "its signature does not match: the value was edited, copied from another "
                "record, or signed with another key",
            )


def legacy(where: str) -> ResultIntegrityError:
    """The refusal of a result written before results were bound to their records."""
    return ResultIntegrityError(
        where,
        "it was stored by an earlier Sluice, whose signatures did not name the record a "
        "result belongs to, so it cannot be verified (run the task again: a resume does so)",
    )
