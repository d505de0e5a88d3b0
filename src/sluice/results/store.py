"""Persisting results: small ones inline in the run's row, large ones as files.

A persisted result is described by a *reference*: a short JSON text kept in
the run's ``result`` column. Small JSON values live inside the reference
itself; small pickles live there base64-encoded and signed; anything larger
than the inline threshold is written to result storage (a folder) and the
reference names the file.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from sluice.errors import ResultMissingError, SerializationError
from sluice.results.serializers import SERIALIZERS, Serializer, is_plain_json
from sluice.results.signing import load_signing_key, sign, verify

ResultRef = str

#: how every inline JSON reference starts (the value follows, then "}")
_INLINE_JSON = '{"s":"json","v":'


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
        self._key: bytes | None = None

    @property
    def signing_key(self) -> bytes:
        if self._key is None:
            self._key = load_signing_key(self.home)
        return self._key

    def persist(
        self,
        value: Any,
        storage_key: str,
        serializer: Serializer | None = None,
        storage: str | os.PathLike[str] | None = None,
    ) -> ResultRef:
        """Store ``value`` and return its reference.

        Args:
            storage_key: file name (relative to storage) used if the result is large.
            serializer: force a serializer; None picks JSON for plain data, else pickle.
            storage: a folder for large results instead of the default one.

        Raises:
            SerializationError: the value cannot be serialized.
        """
        if serializer is None:
            literal = _json_literal(value)
            if literal is not None:
                return _INLINE_JSON + literal + "}"
        plain = serializer is None and is_plain_json(value)
        chosen = SERIALIZERS["json"] if plain else (serializer or SERIALIZERS["pickle"])
        blob = chosen.dumps(value)
        if chosen.name == "pickle":
            blob = sign(self.signing_key, blob)
        if len(blob) <= self.inline_threshold:
            if chosen.name == "json":
                return _INLINE_JSON + blob.decode() + "}"
            return json.dumps({"s": chosen.name, "b64": base64.b64encode(blob).decode()})
        path = self._write_file(storage, storage_key, blob)
        return json.dumps({"s": chosen.name, "path": str(path)})

    def load(self, ref: ResultRef) -> Any:
        """The value a reference describes.

        Raises:
            ResultIntegrityError: a pickled blob is unsigned or tampered with.
            ResultMissingError: the file is gone or unreadable, or the reference is malformed.
        """
        try:
            meta = json.loads(ref)
            serializer = SERIALIZERS[meta["s"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ResultMissingError("(reference)", f"malformed result reference: {exc}") from None
        if "v" in meta:
            return meta["v"]
        if "b64" in meta:
            where, blob = "the run's stored result", base64.b64decode(meta["b64"])
        else:
            where = meta["path"]
            try:
                blob = Path(where).read_bytes()
            except OSError as exc:
                raise ResultMissingError(where, exc.strerror or str(exc)) from None
        if serializer.name == "pickle":
            blob = verify(self.signing_key, blob, where)
        return serializer.loads(blob)

    def _write_file(
        self, storage: str | os.PathLike[str] | None, storage_key: str, blob: bytes
    ) -> Path:
        root = Path(storage).expanduser() if storage else self.default_storage
        path = (root / storage_key).resolve()
        if root.resolve() not in path.parents:
            raise SerializationError(
                f"result with storage key {storage_key!r}",
                "str",
                "the key leaves the storage folder",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader (or a crash) never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


_stores: dict[Path, ResultStore] = {}


def result_store_for(home: Path, inline_threshold: int = 65536) -> ResultStore:
    """The process's result store for a home folder (one signing key read per home)."""
    store = _stores.get(home)
    if store is None:
        store = _stores[home] = ResultStore(home, inline_threshold)
    return store


def load_result(ref: ResultRef) -> Any:
    """Load a persisted result (with the current settings' signing key if it is pickled)."""
    if ref.startswith(_INLINE_JSON):
        # Inline JSON needs no key and no settings: the common case of a replay.
        return json.loads(ref[len(_INLINE_JSON) : -1])
    from sluice.settings import load_settings

    return result_store_for(load_settings().home).load(ref)
