"""Task and flow options: one frozen declaration each, replaced by ``with_options``."""

from __future__ import annotations

import dataclasses
import datetime
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sluice import flow, task
from sluice.cache_policies import INPUTS
from sluice.options import FlowOptions, TaskOptions, option_names
from sluice.task_runners import ThreadPoolTaskRunner


def add(x: int, y: int) -> int:
    """Adds."""
    return x + y


def test_a_task_holds_its_options_and_what_it_derives_from_its_function() -> None:
    t = task(retries=2, tags=["b", "a"], timeout_seconds=5)(add)
    assert t.options == TaskOptions(retries=2, tags=frozenset({"a", "b"}), timeout_seconds=5)
    assert (t.name, t.description, t.retries, t.tags) == ("add", "Adds.", 2, {"a", "b"})
    bare = task(add)
    assert bare.options == TaskOptions() and bare.name == "add"


def test_with_options_replaces_only_the_fields_given() -> None:
    t = task(retries=2, timeout_seconds=5, cache_policy=INPUTS, name="adder")(add)
    copy = t.with_options(retries=0, cache_expiration=datetime.timedelta(hours=1))
    assert copy.options == dataclasses.replace(
        t.options, retries=0, cache_expiration=datetime.timedelta(hours=1)
    )
    assert (copy.name, copy.retries, copy.options.timeout_seconds) == ("adder", 0, 5)
    assert copy.effective_cache_policy is INPUTS
    assert t.retries == 2  # the original is unchanged
    f = flow(retries=1, task_runner=ThreadPoolTaskRunner(2))(add)
    renamed = f.with_options(name="sum")
    assert renamed.options == dataclasses.replace(f.options, name="sum")
    assert renamed.name == "sum" and renamed.retries == 1 and f.name == "add"


def test_every_option_is_a_keyword_of_the_decorator_and_of_with_options() -> None:
    for options, decorate, example in (
        (TaskOptions, task, task(add)),
        (FlowOptions, flow, flow(add)),
    ):
        names = option_names(options)
        assert "retry_policy" not in names and "serializer" not in names  # derived, not options
        for name in names:
            default = getattr(options(), name)
            decorate(**{name: default})(add)
            assert getattr(example.with_options(**{name: default}).options, name) == default


def test_hooks_added_by_decorators_stay_with_copies_without_being_shared() -> None:
    def first(*args: object) -> None: ...

    def second(*args: object) -> None: ...

    t = task(on_failure=[first])(add)
    t.on_failure(second)
    copy = t.with_options(name="copy")
    assert copy.on_failure == [first, second] and copy.options.on_failure == [first, second]
    copy.on_failure(first)
    assert t.on_failure == [first, second]
    f = flow(add)
    f.on_crashed(first)
    assert f.with_options(retries=1).on_crashed == [first]


def test_validation_runs_on_every_copy() -> None:
    t = task(add)
    with pytest.raises(ValueError, match="timeout_seconds must be positive"):
        t.with_options(timeout_seconds=0)
    with pytest.raises(ValueError, match="retries must be >= 0"):
        flow(add).with_options(retries=-1)
    cached = task(cache_policy=INPUTS)(add)
    with pytest.raises(ValueError, match=r"(?i)caching needs a stored result"):
        cached.with_options(persist_result=False)
    with pytest.raises(ValueError, match="unknown result_serializer"):
        flow(result_serializer="yaml")(add)
    with pytest.raises(TypeError, match="unknown options: retrys"):
        t.with_options(retrys=1)
    with pytest.raises(TypeError):
        task(retrys=1)  # type: ignore[call-overload]


def test_options_are_frozen() -> None:
    t = task(add)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.options.retries = 3  # type: ignore[misc]


def test_prefect_code_reads_options_off_the_task_and_the_flow() -> None:
    runner = ThreadPoolTaskRunner(2)
    t = task(timeout_seconds=3, log_prints=True)(add)
    f = flow(task_runner=runner, version="7")(add)
    assert (t.timeout_seconds, t.log_prints) == (3, True)  # type: ignore[attr-defined]
    assert (f.task_runner, f.version) == (runner, "7")  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="no attribute 'retry_policies'"):
        t.retry_policies  # type: ignore[attr-defined]  # noqa: B018


@pytest.mark.integration
def test_type_checkers_see_the_options_as_the_decorators_keywords(tmp_path: Path) -> None:
    sample = tmp_path / "options_usage.py"
    sample.write_text(
        textwrap.dedent(
            """
            from sluice import flow, task

            @task(retries=2, timeout_seconds=1.5, tags=["a"])
            def add(x: int, y: int) -> int:
                return x + y

            @flow(log_prints=True)
            def total(n: int) -> int:
                return add(n, 1)

            reveal_type(add)
            reveal_type(total.with_options(name="other"))
            reveal_type(add.options.timeout_seconds)

            @task(retrys=2)
            def typo() -> None: ...

            @flow(timeout_seconds="soon")
            def wrong() -> None: ...
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--hide-error-context", str(sample)],
        capture_output=True,
        text=True,
    )
    out = result.stdout
    assert "sluice.tasks.Task[[x: int, y: int], int]" in out
    assert "sluice.flows.Flow[[n: int], int]" in out
    assert 'Revealed type is "float | None"' in out or "builtins.float | None" in out
    assert 'Unexpected keyword argument "retrys"' in out
    assert 'No overload variant of "flow" matches argument type "str"' in out
