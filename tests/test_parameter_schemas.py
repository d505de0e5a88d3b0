"""Parameter schemas from flow signatures, and checking run parameters against them."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Literal

import pytest

from sluice import flow
from sluice.deployments.parameters import parameter_schema_of
from sluice.errors import ParameterValidationError
from sluice.parameter_schemas import check_parameters


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Opaque:
    pass


@flow
def etl(
    n: int,
    when: dt.datetime,
    colour: Colour = Colour.RED,
    labels: list[str] | None = None,
    mode: Literal["fast", "safe"] = "safe",
    ratio: float = 0.5,
    opaque: Opaque = Opaque(),  # noqa: B008 (a default JSON cannot hold)
    loose=3,  # type: ignore[no-untyped-def]
) -> None:
    pass


@flow
def open_ended(a: int, **extra: Any) -> None:
    pass


SCHEMA = parameter_schema_of(etl)


def test_schema_has_types_defaults_and_required() -> None:
    props = SCHEMA["properties"]
    assert SCHEMA["required"] == ["n", "when"]
    assert props["n"]["type"] == "integer"
    assert props["when"] == {"format": "date-time", "title": "When", "type": "string"}
    assert props["colour"]["default"] == "red"
    assert props["mode"]["enum"] == ["fast", "safe"]
    assert "default" not in props["opaque"]  # not JSON: left out, the flow applies it
    assert props["loose"] == {"default": 3, "title": "Loose"}


def _check(params: dict[str, Any], schema: dict[str, Any] = SCHEMA) -> None:
    check_parameters("etl", schema, params)


def test_good_parameters_pass() -> None:
    _check({"n": 1, "when": "2026-01-01T00:00:00Z"})
    _check({"n": 2.0, "when": "x", "colour": "blue", "labels": ["a"], "ratio": 1, "loose": [1]})
    _check({"n": 1, "when": "x", "labels": None, "opaque": {"any": "thing"}})


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"when": "x"}, "n: missing required parameter"),
        ({"n": "3", "when": "x"}, "n: expected integer, got string '3'"),
        ({"n": 1.5, "when": "x"}, "n: expected integer, got number 1.5"),
        ({"n": True, "when": "x"}, "n: expected integer, got boolean True"),
        ({"n": 1, "when": "x", "colour": "green"}, "colour: must be one of 'red', 'blue'"),
        ({"n": 1, "when": "x", "labels": ["a", 2]}, "labels: matches none"),
        ({"n": 1, "when": "x", "mode": "slow"}, "mode: must be one of 'fast', 'safe'"),
        ({"n": 1, "when": "x", "ratio": "half"}, "ratio: expected number"),
        ({"n": 1, "when": "x", "size": 3}, "size: unknown parameter (the flow takes: colour,"),
    ],
)
def test_bad_parameters_name_the_parameter(params: dict[str, Any], expected: str) -> None:
    with pytest.raises(ParameterValidationError) as info:
        _check(params)
    assert expected in str(info.value)
    assert str(info.value).startswith("Invalid parameters for flow 'etl': ")


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(ParameterValidationError) as info:
        _check({"n": "x", "bogus": 1})
    fields = [field for field, _ in info.value.errors]
    assert sorted(fields) == ["bogus", "n", "when"]


def test_nested_paths_and_bounds() -> None:
    schema = {
        "properties": {
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"id": {"type": "integer", "minimum": 1}},
                    "required": ["id"],
                    "additionalProperties": False,
                },
                "maxItems": 2,
            },
            "name": {"type": "string", "minLength": 2, "pattern": "^[a-z]+$"},
        }
    }
    with pytest.raises(ParameterValidationError, match=r"rows\[1\]\.id: 0 breaks minimum 1"):
        _check({"rows": [{"id": 1}, {"id": 0}]}, schema)
    with pytest.raises(ParameterValidationError, match=r"rows\[0\]\.x: unknown field"):
        _check({"rows": [{"id": 1, "x": 1}]}, schema)
    with pytest.raises(ParameterValidationError, match="rows: more than 2 items"):
        _check({"rows": [{"id": 1}] * 3}, schema)
    with pytest.raises(ParameterValidationError, match="name: does not match"):
        _check({"name": "AB"}, schema)
    _check({"rows": [{"id": 5}], "name": "ab"}, schema)


def test_flows_taking_kwargs_accept_other_names() -> None:
    schema = parameter_schema_of(open_ended)
    check_parameters("open_ended", schema, {"a": 1, "anything": [1]})
    with pytest.raises(ParameterValidationError, match="a: expected integer"):
        check_parameters("open_ended", schema, {"a": "x"})


def test_no_schema_accepts_anything() -> None:
    check_parameters("f", None, {"whatever": object()})
