"""Transactions as Prefect's docs show them: rollback on a failed quality check, the
key-value store in a rollback hook, on_commit, and a keyed block that runs once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compat.porting import results, run_script, write_ported

pytestmark = pytest.mark.integration

PIPELINE = """
    import os
    import sys

    from prefect import flow, task
    from prefect.transactions import get_transaction, transaction


    @task
    def write_report(filename: str, contents: str) -> None:
        with open(filename, "w") as f:
            f.write(contents)


    @write_report.on_rollback
    def remove_report(txn) -> None:
        os.unlink(txn.get("filename"))
        print("RESULT \\"rolled back\\"")


    @write_report.on_commit
    def announce_report(txn) -> None:
        print(f"RESULT \\"committed {txn.get('filename')}\\"")


    @task
    def check_report(filename: str) -> None:
        with open(filename) as f:
            if len(f.readlines()) < 2:
                raise ValueError("The report is too short")
        assert get_transaction().get("filename") == filename


    @flow
    def publish(filename: str, contents: str) -> None:
        with transaction() as txn:
            txn.set("filename", filename)
            write_report(filename, contents)
            check_report(filename)


    if __name__ == "__main__":
        publish("report.txt", sys.argv[1].replace("|", "\\n"))
"""

ONCE = """
    from prefect import flow, task
    from prefect.transactions import transaction


    @task
    def download() -> str:
        return "rows"


    @task
    def save(data: str) -> None:
        with open("data.txt", "a") as f:
            f.write(data + "\\n")


    @flow
    def pipeline() -> None:
        with transaction(key="download-and-save") as txn:
            if txn.is_committed():
                print("RESULT \\"already saved\\"")
                return
            save(download())
            print("RESULT \\"saved\\"")


    if __name__ == "__main__":
        pipeline()
"""


def test_a_failed_check_rolls_back_the_written_report(tmp_path: Path) -> None:
    script = write_ported(tmp_path, "publish.py", PIPELINE)
    failed = run_script(script, "one line")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "The report is too short" in failed.stderr
    assert results(failed) == ["rolled back"]
    assert not (tmp_path / "report.txt").exists()  # the side effect was undone

    passed = run_script(script, "line one|line two")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert results(passed) == ["committed report.txt"]
    assert (tmp_path / "report.txt").read_text() == "line one\nline two"


def test_a_keyed_transaction_runs_its_block_once(tmp_path: Path) -> None:
    script = write_ported(tmp_path, "once.py", ONCE)
    first, second = run_script(script), run_script(script)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert results(first) == ["saved"] and results(second) == ["already saved"]
    assert (tmp_path / "data.txt").read_text() == "rows\n"
