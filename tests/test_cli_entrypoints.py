"""Loading ``file.py:flow`` entrypoints, and ``sluice run`` parameter parsing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.cli.errors import CliError
from sluice.cli.run import parse_params, parse_value
from sluice.entrypoints import EntrypointError, load_flow, load_object, split_entrypoint

FLOW_FILE = """
from sluice.flows import flow
import helper

@flow(name="greet-flow")
def greet(name: str = "world") -> str:
    return helper.greeting(name)

def plain(x):
    return x

NUMBER = 3
"""


@pytest.fixture(autouse=True)
def restore_imports(tmp_path: Path) -> Iterator[None]:
    """Loading a flow file adds a module and a sys.path entry; undo both.

    Only modules loaded from this test's folder are dropped: unloading library
    modules imported lazily during the test (SQLAlchemy's) would break them.
    """
    path = list(sys.path)
    yield
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]
    sys.path[:] = path


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    (tmp_path / "helper.py").write_text("def greeting(n):\n    return f'hello {n}'\n")
    path = tmp_path / "my_flows.py"
    path.write_text(FLOW_FILE)
    return path


def test_load_flow_from_file_with_sibling_import(flow_file: Path) -> None:
    from sluice.flows import Flow

    flow_obj = load_flow(f"{flow_file}:greet")
    assert isinstance(flow_obj, Flow)
    assert flow_obj.name == "greet-flow"
    assert flow_obj.fn("bob") == "hello bob"
    # Registered under its stem so process-pool workers can import it by name.
    assert sys.modules["my_flows"].__file__ == str(flow_file)
    # Loading again reuses the module rather than executing the file twice.
    assert load_flow(f"{flow_file}:greet") is flow_obj


def test_load_object_from_module_path(flow_file: Path) -> None:
    sys.path.insert(0, str(flow_file.parent))
    assert load_object("my_flows:NUMBER") == 3


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        (":missing", "has no attribute 'missing'"),
        (":plain", "is a function, not a flow"),
        (":NUMBER", "is a int, not a flow"),
    ],
)
def test_load_flow_errors(flow_file: Path, suffix: str, message: str) -> None:
    with pytest.raises(EntrypointError, match=message):
        load_flow(f"{flow_file}{suffix}")


def test_missing_file_and_bad_syntax(tmp_path: Path) -> None:
    with pytest.raises(EntrypointError, match=r"file '.*nope\.py' not found"):
        load_flow(f"{tmp_path}/nope.py:f")
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n")
    with pytest.raises(EntrypointError, match=r"failed to import .*SyntaxError"):
        load_flow(f"{bad}:f")
    assert "bad" not in sys.modules
    with pytest.raises(EntrypointError, match="no file or module named 'no_such_module_xyz'"):
        load_flow("no_such_module_xyz:f")


def test_stdlib_named_file_does_not_shadow_stdlib(tmp_path: Path) -> None:
    path = tmp_path / "json.py"
    path.write_text("VALUE = 1\n")
    import json

    assert load_object(f"{path}:VALUE") == 1
    assert sys.modules["json"] is json


@pytest.mark.parametrize("text", ["flows.py", ":f", "flows.py:"])
def test_split_entrypoint_rejects_malformed(text: str) -> None:
    with pytest.raises(EntrypointError, match=r"expected path/to/file\.py:flow_function"):
        split_entrypoint(text)


def test_split_entrypoint_windows_path() -> None:
    assert split_entrypoint(r"C:\flows\etl.py:etl") == (r"C:\flows\etl.py", "etl")


def test_parse_value() -> None:
    assert parse_value("3") == 3
    assert parse_value("abc") == "abc"
    assert parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value('"3"') == "3"
    assert parse_value("") == ""
    assert parse_value("a=b") == "a=b"


def test_parse_params_merges_json_then_pairs() -> None:
    params = parse_params(["n=3", "name=abc", "expr=a=b"], '{"n": 1, "other": [1]}')
    assert params == {"n": 3, "name": "abc", "expr": "a=b", "other": [1]}


@pytest.mark.parametrize(
    ("pairs", "json_text", "message"),
    [
        (["novalue"], None, "expected key=value"),
        (["=3"], None, "expected key=value"),
        ([], "{bad", "not valid JSON"),
        ([], "[1]", "must be a JSON object"),
    ],
)
def test_parse_params_errors(pairs: list[str], json_text: str | None, message: str) -> None:
    with pytest.raises(CliError, match=message):
        parse_params(pairs, json_text)
