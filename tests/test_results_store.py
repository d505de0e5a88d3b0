"""Result persistence: inline and file results, signatures, bad input.

(Binding a result to its record, and refusing one moved or edited: see
``tests/test_results_binding.py``.)"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import pytest

from sluice.errors import ResultIntegrityError, ResultMissingError, SerializationError
from sluice.results.serializers import is_plain_json, resolve_serializer
from sluice.results.signing import load_signing_key
from sluice.results.store import ResultStore

OWNER = "the result of task t:0 of flow run r"


@pytest.fixture
def store(tmp_path: Path) -> ResultStore:
    return ResultStore(tmp_path / "home", inline_threshold=1024)


@pytest.mark.parametrize("value", [None, 3, 2.5, "text", [1, "a", None], {"k": [1, {"n": True}]}])
def test_plain_json_values_are_inline_json(store: ResultStore, value: object) -> None:
    ref = store.persist(value, OWNER, "unused")
    assert json.loads(ref)["s"] == "json"
    assert store.load(ref, OWNER) == value


@pytest.mark.parametrize("value", [(1, 2), {1: "a"}, {"a", "b"}, b"bytes", float("nan")])
def test_values_json_would_change_are_pickled(store: ResultStore, value: object) -> None:
    assert not is_plain_json(value)
    ref = store.persist(value, OWNER, "unused")
    assert json.loads(ref)["s"] == "pickle"
    loaded = store.load(ref, OWNER)
    assert loaded == value or (loaded != loaded and value != value)


def test_large_results_go_to_files_atomically(store: ResultStore, tmp_path: Path) -> None:
    value = {"rows": list(range(2000))}
    ref = store.persist(value, OWNER, "flow-1/task-0.json")
    path = Path(json.loads(ref)["path"])
    assert path.is_file() and path.parent.name == "flow-1"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]
    assert store.load(ref, OWNER) == value


def test_custom_storage_folder(store: ResultStore, tmp_path: Path) -> None:
    ref = store.persist("x" * 5000, OWNER, "big", storage=tmp_path / "elsewhere")
    assert json.loads(ref)["path"].startswith(str(tmp_path / "elsewhere"))


def test_tampered_pickles_are_refused_before_unpickling(store: ResultStore) -> None:
    ref = json.loads(store.persist((1, 2), OWNER, "k"))
    blob = bytearray(base64.b64decode(ref["b64"]))
    blob[-3] ^= 0xFF
    ref["b64"] = base64.b64encode(bytes(blob)).decode()
    with pytest.raises(ResultIntegrityError, match="signature does not match"):
        store.load(json.dumps(ref), OWNER)


def test_unsigned_pickles_in_files_are_refused(store: ResultStore, tmp_path: Path) -> None:
    import pickle

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(("not", "signed")))
    with pytest.raises(ResultIntegrityError, match="earlier Sluice"):
        store.load(json.dumps({"s": "pickle", "path": str(evil)}), OWNER)


def test_a_store_with_another_key_cannot_load(tmp_path: Path) -> None:
    for value in ((1,), 1, "x" * 5000):
        ref = ResultStore(tmp_path / "a").persist(value, OWNER, "k")
        with pytest.raises(ResultIntegrityError, match="signed with another key"):
            ResultStore(tmp_path / "b").load(ref, OWNER)


def test_signing_key_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_RESULTS_SIGNING_KEY", "shared-secret")
    ref = ResultStore(tmp_path / "a").persist((1,), OWNER, "k")
    assert ResultStore(tmp_path / "b").load(ref, OWNER) == (1,)
    assert not (tmp_path / "a" / "results.key").exists()


def test_processes_racing_to_make_the_key_all_get_the_winners(tmp_path: Path) -> None:
    # A Dask worker restarted mid-flow once read the key file between its
    # creation and its write, and signed with an empty key.
    for attempt in range(40):
        home = tmp_path / str(attempt)
        start = threading.Barrier(6)
        keys: list[bytes] = []

        def make(home: Path, start: threading.Barrier, keys: list[bytes]) -> None:
            start.wait()
            keys.append(load_signing_key(home))

        threads = [threading.Thread(target=make, args=(home, start, keys)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(keys)) == 1 and len(keys[0]) == 64, keys
        assert (home / "results.key").read_bytes() == keys[0]
        assert [f.name for f in home.iterdir()] == ["results.key"]  # no drafts left


def test_key_file_is_private(store: ResultStore) -> None:
    store.persist((1,), OWNER, "k")
    mode = (store.home / "results.key").stat().st_mode & 0o777
    assert mode == 0o600


def test_missing_file_and_malformed_reference(store: ResultStore, tmp_path: Path) -> None:
    ref = store.persist("x" * 5000, OWNER, "nope.json")
    Path(json.loads(ref)["path"]).unlink()
    with pytest.raises(ResultMissingError, match=r"nope\.json"):
        store.load(ref, OWNER)
    for malformed in ("not json", "[1]", '{"s": "yaml", "h": "00", "v": 1}'):
        with pytest.raises(ResultMissingError, match=r"malformed|unknown serializer"):
            store.load(malformed, OWNER)


def test_unserializable_values_and_escaping_keys(store: ResultStore) -> None:
    with pytest.raises(SerializationError, match="lock"):
        store.persist(threading.Lock(), OWNER, "k")
    with pytest.raises(SerializationError, match="leaves the storage folder"):
        store.persist("x" * 5000, OWNER, "../../outside")


def test_serializer_names() -> None:
    assert resolve_serializer("json") is not None
    with pytest.raises(ValueError, match="expected one of: json, pickle"):
        resolve_serializer("yaml")
