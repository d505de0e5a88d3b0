"""Parameter binding and validation."""

from __future__ import annotations

import pytest

from sluice.engine.parameters import bind_arguments, jsonable, validate_parameters
from sluice.errors import ParameterValidationError


def sample(name: str, count: int, ratio: float = 0.5, tags: list[str] | None = None) -> None:
    """A function with typed parameters."""


def test_binding_fills_defaults() -> None:
    assert bind_arguments(sample, "f", ("a", 1), {}) == {
        "name": "a",
        "count": 1,
        "ratio": 0.5,
        "tags": None,
    }


def test_missing_argument_is_a_validation_error() -> None:
    with pytest.raises(ParameterValidationError, match="count"):
        bind_arguments(sample, "f", ("a",), {})


def test_values_are_coerced_like_pydantic() -> None:
    params = bind_arguments(sample, "f", ("a", "3"), {"tags": ("x",)})
    out = validate_parameters(sample, "f", params)
    assert out["count"] == 3
    assert out["tags"] == ["x"]


def test_each_bad_field_is_named() -> None:
    params = bind_arguments(sample, "my-flow", ("a", "lots"), {"ratio": "high"})
    with pytest.raises(ParameterValidationError) as info:
        validate_parameters(sample, "my-flow", params)
    fields = [field for field, _ in info.value.errors]
    assert fields == ["count", "ratio"]
    assert "my-flow" in str(info.value)


def test_jsonable_turns_unknown_objects_into_text() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<thing>"

    assert jsonable({"a": Thing(), "b": {1, 2}, "c": [1, "x"]}) == {
        "a": "<thing>",
        "b": [1, 2],
        "c": [1, "x"],
    }
