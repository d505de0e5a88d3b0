"""Persisting results: small ones inline in the run's row, large ones as files.

A persisted result is described by a *reference*, a short JSON text kept in
the row of the record it belongs to, always signed for that record (its
*owner*, see :mod:`sluice.results.owners` and :mod:`sluice.results.signing`)::

    {"s":"json","h":SIG,"v":VALUE}            small JSON: the value itself
    {"s":"pickle","h":SIG,"b64":BASE64}       small pickle
    {"s":S,"h":SIG,"k":KEY,"path":PATH}       larger than the inline threshold

An inline signature covers the value's JSON text exactly as it stands in the
reference (or the pickle's bytes). A file reference's covers the file's path
and storage key, and the file starts with a signature of its own, over its
content and its storage key: a reference copied into another row, a value
edited in place and a file moved to another key's place are all refused,
before anything is deserialized.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.errors import ResultIntegrityError, ResultMissingError, SerializationError
from sluice.results.owners import file_owner
from sluice.results.serializers import SERIALIZERS, Serializer, is_plain_json
from sluice.results.signing import SIGNATURE_CHARS, Signer, legacy, load_signing_key
from sluice.settings import home_folder

ResultRef = str

#: how every inline JSON reference starts; its signature follows, then _JSON_VALUE
_JSON_HEAD = '{"s":"json","h":"'
_JSON_VALUE = '","v":'
_SIGNATURE_END = len(_JSON_HEAD) + SIGNATURE_CHARS
_VALUE_AT = _SIGNATURE_END + len(_JSON_VALUE)
#: how a result file starts: this, then its 16-byte signature, then the serialized value
_FILE_MAGIC = b"SLB1"
_FILE_HEADER = len(_FILE_MAGIC) + SIGNATURE_CHARS // 2


def _json_literal(value: Any) -> str | None:
    """The JSON text of a scalar, without going through ``json.dumps`` (hot path)."""
    kind = type(value)
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is str and len(value) < 1024:
        return json.dumps(value)
    return None


def is_inline(ref: ResultRef) -> bool:
    """True when the value is held in the reference itself (not in a file)."""
    return ref.startswith(_JSON_HEAD) or '"b64":' in ref


@dataclass(frozen=True)
class _Inline:
    serializer: str
    payload: bytes


@dataclass(frozen=True)
class _File:
    serializer: str
    path: str
    storage_key: str

    @property
    def signed(self) -> bytes:
        return f"{self.path}\0{self.storage_key}".encode("utf-8", "surrogateescape")


class ResultStore:
    """Writes results and reads them back by reference.

    Args:
        home: the Sluice home folder (default storage and the signing key live there).
        inline_threshold: serialized results up to this many bytes stay in the row.
        default_storage: the folder for larger results (default ``home/storage``).
    """

    def __init__(
        self, home: Path, inline_threshold: int = 65536, default_storage: Path | None = None
    ) -> None:
        self.home = home
        self.inline_threshold = inline_threshold
        self.default_storage = default_storage or home / "storage"
        self._signer: Signer | None = None

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            self._signer = Signer(load_signing_key(self.home))
        return self._signer

    def persist(
        self,
        value: Any,
        owner: str,
        storage_key: str,
        serializer: Serializer | None = None,
        storage: str | os.PathLike[str] | None = None,
    ) -> ResultRef:
        """Store ``value`` for ``owner`` and return its reference.

        Args:
            owner: the record the value belongs to (:mod:`sluice.results.owners`).
            storage_key: file name (relative to storage) used if the result is large.
            serializer: force a serializer; None picks JSON for plain data, else pickle.
            storage: a folder for large results instead of the default one.

        Raises:
            SerializationError: the value cannot be serialized.
        """
        if serializer is None:
            literal = _json_literal(value)
            if literal is not None:
                return self._inline_json(owner, literal)
        plain = serializer is None and is_plain_json(value)
        chosen = SERIALIZERS["json"] if plain else (serializer or SERIALIZERS["pickle"])
        blob = chosen.dumps(value)
        if len(blob) <= self.inline_threshold:
            return self._sealed(_Inline(chosen.name, blob), owner)
        path = self._write_file(storage, storage_key, chosen.name, blob)
        return self._sealed(_File(chosen.name, str(path), storage_key), owner)

    def load(self, ref: ResultRef, owner: str) -> Any:
        """The value a reference describes, once its signatures show it belongs to ``owner``.

        Raises:
            ResultIntegrityError: the value is not ``owner``'s (copied from another
                record, edited, or a file moved from another key), or was stored by
                an earlier Sluice; nothing was deserialized.
            ResultMissingError: the file is gone or unreadable, or the reference is malformed.
        """
        stored = self._verified(ref, owner)
        serializer = SERIALIZERS[stored.serializer]
        if isinstance(stored, _File):
            return serializer.loads(self._read_file(stored))
        return serializer.loads(stored.payload)

    def verify(self, ref: ResultRef, owner: str) -> None:
        """Check that ``ref`` is ``owner``'s (and its file, if it has one, that key's),
        without deserializing anything.

        Raises:
            ResultIntegrityError, ResultMissingError: as :meth:`load`.
        """
        stored = self._verified(ref, owner)
        if isinstance(stored, _File):
            self._read_file(stored)

    def rebind(self, ref: ResultRef, owner: str, new_owner: str) -> ResultRef:
        """The reference of ``owner``'s value signed for ``new_owner`` instead (a cache
        hit or a subflow handing its result to another record). Nothing is
        deserialized and no file is read.

        Raises:
            ResultIntegrityError, ResultMissingError: as :meth:`load`, for ``owner``.
        """
        return self._sealed(self._verified(ref, owner), new_owner)

    # -- references ---------------------------------------------------------------
    def _inline_json(self, owner: str, text: str) -> ResultRef:
        signature = self.signer.sign(owner, "json", text.encode())
        return f"{_JSON_HEAD}{signature}{_JSON_VALUE}{text}}}"

    def _sealed(self, stored: _Inline | _File, owner: str) -> ResultRef:
        if isinstance(stored, _File):
            signature = self.signer.sign(owner, "file:" + stored.serializer, stored.signed)
            meta = {"s": stored.serializer, "h": signature, "k": stored.storage_key}
            return json.dumps({**meta, "path": stored.path})
        if stored.serializer == "json":
            return self._inline_json(owner, stored.payload.decode())
        signature = self.signer.sign(owner, stored.serializer, stored.payload)
        encoded = base64.b64encode(stored.payload).decode()
        return json.dumps({"s": stored.serializer, "h": signature, "b64": encoded})

    def _verified(self, ref: ResultRef, owner: str) -> _Inline | _File:
        """What ``ref`` holds, its signature checked against ``owner``."""
        if ref.startswith(_JSON_HEAD) and ref[_SIGNATURE_END:_VALUE_AT] == _JSON_VALUE:
            text = ref[_VALUE_AT:-1].encode()
            self.signer.check(owner, "json", text, ref[len(_JSON_HEAD) : _SIGNATURE_END])
            return _Inline("json", text)
        meta = _parse(ref)
        name, signature = meta.get("s"), meta.get("h")
        if name not in SERIALIZERS:
            raise ResultMissingError(owner, f"unknown serializer {name!r} in its reference")
        if signature is None:
            raise legacy(owner)
        if not isinstance(signature, str):
            raise ResultIntegrityError(owner, "its reference carries no valid signature")
        if "b64" in meta:
            try:
                payload = base64.b64decode(meta["b64"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise ResultIntegrityError(owner, "its stored bytes are not base64") from None
            self.signer.check(owner, name, payload, signature)
            return _Inline(name, payload)
        path, storage_key = meta.get("path"), meta.get("k")
        if isinstance(path, str) and isinstance(storage_key, str):
            stored = _File(name, path, storage_key)
            self.signer.check(owner, "file:" + name, stored.signed, signature)
            return stored
        # An inline JSON value not laid out as written: its text was changed.
        raise ResultIntegrityError(owner, "its reference was rewritten (not as Sluice wrote it)")

    # -- files --------------------------------------------------------------------
    def _read_file(self, stored: _File) -> bytes:
        try:
            blob = Path(stored.path).read_bytes()
        except OSError as exc:
            raise ResultMissingError(stored.path, exc.strerror or str(exc)) from None
        owner = file_owner(stored.storage_key)
        if not blob.startswith(_FILE_MAGIC) or len(blob) < _FILE_HEADER:
            raise legacy(f"{owner} ({stored.path})")
        signature = blob[len(_FILE_MAGIC) : _FILE_HEADER].hex()
        payload = blob[_FILE_HEADER:]
        try:
            self.signer.check(owner, stored.serializer, payload, signature)
        except ResultIntegrityError as exc:
            raise ResultIntegrityError(
                f"{owner} ({stored.path})",
                "the file is not that key's result (moved from another key, or edited)",
            ) from exc
        return payload

    def _write_file(
        self,
        storage: str | os.PathLike[str] | None,
        storage_key: str,
        serializer: str,
        blob: bytes,
    ) -> Path:
        root = Path(storage).expanduser() if storage else self.default_storage
        path = (root / storage_key).resolve()
        if root.resolve() not in path.parents:
            raise SerializationError(
                f"result with storage key {storage_key!r}",
                "str",
                "the key leaves the storage folder",
            )
        signature = self.signer.sign(file_owner(storage_key), serializer, blob)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader (or a crash) never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(_FILE_MAGIC + bytes.fromhex(signature))
                handle.write(blob)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def _parse(ref: ResultRef) -> dict[str, Any]:
    try:
        meta = json.loads(ref)
    except (ValueError, TypeError) as exc:
        raise ResultMissingError("(reference)", f"malformed result reference: {exc}") from None
    if not isinstance(meta, dict):
        raise ResultMissingError("(reference)", "malformed result reference: not an object")
    return meta


_stores: dict[Path, ResultStore] = {}


def result_store_for(home: Path, inline_threshold: int = 65536) -> ResultStore:
    """The process's result store for a home folder (one signing key read per home)."""
    store = _stores.get(home)
    if store is None:
        store = _stores[home] = ResultStore(home, inline_threshold)
    return store


def load_result(ref: ResultRef, owner: str) -> Any:
    """Load ``owner``'s persisted result with this process's signing key (the home
    folder's, or ``SLUICE_RESULTS_SIGNING_KEY``).

    Raises:
        ResultIntegrityError, ResultMissingError: see :meth:`ResultStore.load`.
    """
    return result_store_for(home_folder()).load(ref, owner)
