"""A stored result is bound to the record it belongs to, for every serializer.

Its signature names its owner (task position and flow run, flow run, or the
storage key of a result file): a genuinely signed value copied into another
run's row, a JSON value edited in place, a result file moved to another
key's place, or a value stored by an earlier Sluice (whose signatures named
no record) is refused before it is deserialized. "Before" is proven with a
pickle whose unpickling writes a file: the file never appears. A resume
re-executes a task whose stored result is refused, and says why.

Runs are real (embedded engine, SQLite file or PostgreSQL); the attacks are
plain SQL on the store and file copies in result storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import sluice
from sluice import flow, task
from sluice.backend.factory import close_backends
from sluice.cache_policies import INPUTS
from sluice.deployments.run import DeploymentRun
from sluice.errors import ResultIntegrityError
from sluice.results.owners import (
    file_owner,
    flow_result_owner,
    owner_of_task_run,
    parameters_owner,
    task_result_owner,
)
from sluice.results.serializers import SERIALIZERS
from sluice.results.signing import Signer, load_signing_key
from sluice.results.store import ResultStore
from sluice.schemas import TaskRunRecord
from tests.helpers import flow_runs, log_text, task_runs
from tests.server_helpers import DIALECTS, pg_database


# -- a value whose unpickling has a side effect (the proof of "before") -----------------
def unpickled(path: str) -> str:
    Path(path).write_text("unpickled")
    return path


class WritesOnLoad:
    """Pickles to a call of :func:`unpickled`: loading it writes ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (unpickled, (self.path,))


# -- the flows under attack -------------------------------------------------------------
def count(counter: str, what: str) -> None:
    with open(counter, "a") as handle:
        handle.write(what + "\n")


@task
def make(kind: str, marker: str, counter: str) -> Any:
    count(counter, "make")
    if kind == "evil":
        return WritesOnLoad(Path(marker))
    if kind == "big":
        return ("big", "b" * 200)  # pickled, and over the test's inline threshold
    return {"kind": kind, "n": 6}


@task
def gate(flag: str) -> None:
    if Path(flag).exists():
        raise RuntimeError("fails while the flag file exists")


@flow
def victim(kind: str, marker: str, flag: str, counter: str) -> str:
    value = make(kind, marker, counter)
    gate(flag)
    return json.dumps(value) if isinstance(value, (dict, str)) else repr(type(value))


@pytest.fixture(params=DIALECTS)
def database(request: pytest.FixtureRequest, sluice_home: Path) -> Iterator[str]:
    """The store's URL (the runs are embedded): the home's SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{sluice_home / 'sluice.db'}"
        return
    with pg_database("sluice_bind") as url:
        yield url


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    return {name: str(tmp_path / name) for name in ("marker", "flag", "counter")}


def _run(kind: str, files: dict[str, str], *, failing: bool = False) -> str:
    """Run ``victim`` to its end; its flow run's id."""
    flag = Path(files["flag"])
    flag.unlink(missing_ok=True)
    if failing:
        flag.write_text("on")
    state = victim(kind, files["marker"], files["flag"], files["counter"], return_state=True)
    assert state.is_failed() is failing
    assert state.run_id is not None
    return state.run_id


def _make_run(run_id: str) -> TaskRunRecord:
    """The run's first call of ``make`` (a resume that re-executes it adds another)."""
    return min((t for t in task_runs(run_id) if t.task_name == "make"), key=lambda t: t.created)


def _set_result(url: str, task_run_id: str, ref: str) -> None:
    """The attacker's edit: plain SQL on the store."""
    close_backends()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE task_run SET result = :ref WHERE id = :id"),
                {"ref": ref, "id": task_run_id},
            )
    finally:
        engine.dispose()


class Warnings(logging.Handler):
    """The warnings Sluice's loggers emit (whatever their propagation)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def warned() -> Iterator[Warnings]:
    handler = Warnings()
    logger = logging.getLogger("sluice")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _resume(run_id: str, files: dict[str, str]) -> str:
    Path(files["flag"]).unlink(missing_ok=True)
    state = sluice.resume_flow_run(run_id, flow=victim)
    assert state.is_completed(), state
    return str(state.result())


@pytest.fixture
def on_database(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SLUICE_DATABASE_URL", database)
    yield database
    close_backends()


def test_a_signed_result_copied_into_another_run_is_refused_before_unpickling(
    on_database: str, files: dict[str, str], warned: Warnings
) -> None:
    genuine = _run("evil", files)  # its task returned the booby-trapped object, signed
    target = _run("good", files, failing=True)
    assert not Path(files["marker"]).exists()
    _set_result(on_database, _make_run(target).id, _make_run(genuine).result or "")
    # The resume refuses the copied row, runs the task again, and never unpickles it.
    assert json.loads(_resume(target, files)) == {"kind": "good", "n": 6}
    assert not Path(files["marker"]).exists()
    assert Path(files["counter"]).read_text().split() == ["make"] * 3
    warning = warned.text
    assert f"Refusing to load the result of task make:0 of flow run {target}" in warning
    assert "copied from another record" in warning
    # Loading the copied value as the target's result is refused too (the API a
    # caller holding the record would use), and it is genuine where it belongs.
    copied = _make_run(genuine).result or ""
    store = ResultStore(_home())
    with pytest.raises(ResultIntegrityError, match=f"flow run {target}"):
        store.load(copied, task_result_owner(target, "make:0", "x"))
    assert not Path(files["marker"]).exists()
    store.load(copied, owner_of_task_run(_make_run(genuine)))
    assert Path(files["marker"]).exists()  # what would have happened


def _home() -> Path:
    from sluice.settings import load_settings

    return load_settings().home


def test_an_edited_json_result_is_refused(
    on_database: str, files: dict[str, str], warned: Warnings
) -> None:
    target = _run("good", files, failing=True)
    row = _make_run(target)
    ref = row.result or ""
    assert '"n":6' in ref
    _set_result(on_database, row.id, ref.replace('"n":6', '"n":666'))
    assert json.loads(_resume(target, files)) == {"kind": "good", "n": 6}
    assert Path(files["counter"]).read_text().split() == ["make"] * 2
    assert "its signature does not match: the value was edited" in warned.text


def test_an_edited_flow_result_is_refused_naming_the_run(
    on_database: str, files: dict[str, str]
) -> None:
    run_id = _run("good", files)
    (record,) = [r for r in flow_runs("victim") if r.id == run_id]
    assert DeploymentRun(record).state.result() == json.dumps({"kind": "good", "n": 6})
    record.result = (record.result or "").replace("good", "evil")
    with pytest.raises(ResultIntegrityError, match=f"the result of flow run {run_id}"):
        DeploymentRun(record).state.result()


def test_a_result_file_moved_to_another_key_is_refused_before_unpickling(
    on_database: str,
    files: dict[str, str],
    warned: Warnings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLUICE_RESULTS_INLINE_THRESHOLD", "16")  # every pickle to a file
    genuine = _run("evil", files)
    target = _run("big", files, failing=True)
    source = Path(json.loads(_make_run(genuine).result or "")["path"])
    moved = Path(json.loads(_make_run(target).result or "")["path"])
    assert source != moved and source.is_file() and moved.is_file()
    moved.write_bytes(source.read_bytes())  # the attacker's copy, signature and all
    assert _resume(target, files) == "<class 'tuple'>"
    assert not Path(files["marker"]).exists()
    assert Path(files["counter"]).read_text().split() == ["make"] * 3
    warning = warned.text
    assert "the result file with storage key" in warning and "moved from another key" in warning


def test_file_binding_in_the_store(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "home", inline_threshold=16)
    marker = tmp_path / "marker"
    a, b = task_result_owner("r", "t:0", "x"), task_result_owner("r", "t:1", "y")
    evil = store.persist(WritesOnLoad(marker), a, "r/a")
    plain = store.persist(("b", "b" * 100), b, "r/b")
    Path(json.loads(plain)["path"]).write_bytes(Path(json.loads(evil)["path"]).read_bytes())
    with pytest.raises(ResultIntegrityError, match=r"storage key 'r/b'.*moved from another key"):
        store.load(plain, b)
    # The reference copied whole to the other row: refused by the row's signature.
    with pytest.raises(ResultIntegrityError, match="t:1 of flow run r"):
        store.load(evil, b)
    assert not marker.exists()
    # And the file rewritten in place, signature kept: its content no longer matches.
    path = Path(json.loads(evil)["path"])
    content = bytearray(path.read_bytes())
    content[-5] ^= 0x01
    path.write_bytes(bytes(content))
    with pytest.raises(ResultIntegrityError, match="storage key 'r/a'"):
        store.load(evil, a)
    assert not marker.exists()


@pytest.mark.parametrize("value", [6, "text", [1, {"a": None}], (1, 2), {1, 2}, b"raw"])
def test_every_serializer_is_bound(tmp_path: Path, value: Any) -> None:
    store = ResultStore(tmp_path / "home")
    mine, theirs = flow_result_owner("r1"), flow_result_owner("r2")
    for serializer in (None, SERIALIZERS["pickle"]):  # automatic (JSON when it can), pickle
        ref = store.persist(value, mine, "k", serializer)
        assert store.load(ref, mine) == value
        with pytest.raises(ResultIntegrityError, match="the result of flow run r2"):
            store.load(ref, theirs)
        with pytest.raises(ResultIntegrityError):
            store.load(ref, parameters_owner("r1"))  # the same run, another use


def test_json_text_is_covered_exactly(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "home")
    mine = flow_result_owner("r1")
    ref = store.persist({"n": 1}, mine, "k", SERIALIZERS["json"])
    assert json.loads(ref)["s"] == "json" and store.load(ref, mine) == {"n": 1}
    with pytest.raises(ResultIntegrityError, match="edited"):
        store.load(ref.replace('"n":1', '"n":2'), mine)
    with pytest.raises(ResultIntegrityError, match="rewritten"):
        store.load(json.dumps(json.loads(ref), indent=1), mine)


def test_the_signature_is_hmac_sha256_of_owner_kind_and_bytes() -> None:
    key = b"k" * 100  # longer than a block: hashed first, as HMAC says
    owner, payload = "the result of flow run r", b'{"a":1}'
    message = b"%d:%s:json:" % (len(owner), owner.encode()) + payload
    expected = hmac.new(key, message, hashlib.sha256).digest()[:16].hex()
    assert Signer(key).sign(owner, "json", payload) == expected
    assert Signer(b"short").sign(owner, "json", payload) == (
        hmac.new(b"short", message, hashlib.sha256).digest()[:16].hex()
    )


# -- results stored by the previous version: refused, with a clear message ---------------
def _legacy_pickle(key: bytes, value: Any) -> str:
    """A pickled result as Sluice wrote it before results were bound: signed, but
    for no record in particular."""
    import cloudpickle

    blob = cloudpickle.dumps(value)
    signed = b"SLS1" + hmac.new(key, blob, hashlib.sha256).digest() + blob
    return json.dumps({"s": "pickle", "b64": base64.b64encode(signed).decode()})


def test_results_of_the_previous_version_are_refused_and_the_task_runs_again(
    on_database: str, files: dict[str, str], warned: Warnings
) -> None:
    target = _run("good", files, failing=True)
    key = load_signing_key(_home())
    # A value the old code would have loaded: signed with this store's key.
    _set_result(
        on_database, _make_run(target).id, _legacy_pickle(key, WritesOnLoad(Path(files["marker"])))
    )
    assert json.loads(_resume(target, files)) == {"kind": "good", "n": 6}
    assert not Path(files["marker"]).exists()
    assert "stored by an earlier Sluice" in warned.text
    store = ResultStore(_home())
    owner = owner_of_task_run(_make_run(target))
    for legacy in ('{"s":"json","v":{"kind":"good","n":6}}', _legacy_pickle(key, 1)):
        with pytest.raises(ResultIntegrityError, match="stored by an earlier Sluice"):
            store.load(legacy, owner)


def test_legacy_parameters_fall_back_to_the_run_s_json_parameters(
    on_database: str, files: dict[str, str], warned: Warnings
) -> None:
    target = _run("good", files, failing=True)
    close_backends()
    engine = sa.create_engine(on_database)
    legacy = json.dumps(
        {"s": "json", "v": {"kind": "evil", "marker": "", "flag": "", "counter": ""}}
    )
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE flow_run SET parameters_ref = :ref WHERE id = :id"),
                {"ref": legacy, "id": target},
            )
    finally:
        engine.dispose()
    # The refused copy is not used: the run's own JSON parameters are.
    assert json.loads(_resume(target, files)) == {"kind": "good", "n": 6}
    assert f"Refusing to load the parameters of flow run {target}" in warned.text


# -- legitimate moves: a cache hit, a subflow's result in its parent ---------------------
CACHED: list[int] = []


@task(cache_policy=INPUTS)
def cached_square(x: int) -> int:
    CACHED.append(x)
    return x * x


@flow
def uses_cache(x: int) -> int:
    return cached_square(x)


def test_a_cache_hit_adopts_the_result_and_a_tampered_one_is_not_used(
    on_database: str, warned: Warnings
) -> None:
    CACHED.clear()
    assert uses_cache(7) == 49 and uses_cache(7) == 49
    assert CACHED == [7]  # the second run was a hit
    first, second = sorted(flow_runs("uses-cache"), key=lambda r: r.created)
    (hit,) = task_runs(second.id)
    assert hit.state_name == "Cached"
    store = ResultStore(_home())
    assert store.load(hit.result or "", owner_of_task_run(hit)) == 49  # signed for its row
    (original,) = task_runs(first.id)
    for row in (original, hit):
        ref = row.result or ""
        assert ref.endswith('"v":49}')
        _set_result(on_database, row.id, ref.replace('"v":49}', '"v":50}'))
    assert uses_cache(7) == 49
    assert CACHED == [7, 7]  # refused, so computed again
    third = max(flow_runs("uses-cache"), key=lambda r: r.created)
    assert "Cached result not used, the task runs: Refusing to load" in log_text(third.id)


@flow
def inner(x: int) -> dict[str, int]:
    return {"x": x}


@flow
def outer(flag: str) -> int:
    value = inner(5)
    gate(flag)
    return value["x"]


def test_a_subflow_result_is_replayed_from_its_parent(files: dict[str, str]) -> None:
    Path(files["flag"]).write_text("on")
    state = outer(files["flag"], return_state=True)
    assert state.is_failed() and state.run_id is not None
    Path(files["flag"]).unlink()
    assert sluice.resume_flow_run(state.run_id, flow=outer).result() == 5
    (child,) = [r for r in flow_runs("inner")]  # replayed, not run again
    assert child.run_count == 1


def test_owner_names() -> None:
    assert file_owner("a/b") == "the result file with storage key 'a/b'"
    assert task_result_owner(None, "t:0", "tr") == "the result of task run tr"
