"""Records check (Prefect side): count task runs in Prefect's SQLite store.

Run after the map workload with the same PREFECT_HOME.  Reads
``$PREFECT_HOME/prefect.db`` (table ``task_run``) with the stdlib sqlite3
module, so any python3 can run it.

Usage: PREFECT_HOME=... python prefect_records.py
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from _harness import emit


def count_rows(db: Path) -> dict:
    """Return task-run totals (overall and per state type) and flow-run count."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        task_runs = con.execute("SELECT COUNT(*) FROM task_run").fetchone()[0]
        flow_runs = con.execute("SELECT COUNT(*) FROM flow_run").fetchone()[0]
        by_state = dict(
            con.execute(
                "SELECT COALESCE(state_type, 'NONE'), COUNT(*) FROM task_run GROUP BY 1"
            ).fetchall()
        )
    finally:
        con.close()
    return {"task_runs": task_runs, "flow_runs": flow_runs, "by_state": by_state}


def main() -> None:
    """Locate the database under PREFECT_HOME and print the counts."""
    home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect"))
    db = home / "prefect.db"
    if not db.exists():
        emit("records", task_runs=None, error=f"no database at {db}")
        return
    emit("records", db=str(db), **count_rows(db))


if __name__ == "__main__":
    main()
