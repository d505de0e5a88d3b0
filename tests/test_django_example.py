"""examples/django_trigger: migrate a real Django SQLite database, save a model, and see
the run its post_save receiver created executed by a real worker subprocess."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sluice.backend.factory import close_backends, get_backend
from sluice.deployments.run import DeploymentRun
from sluice.states import StateType

pytest.importorskip("django")
pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "django_trigger"
SLUICE = Path(sys.executable).with_name("sluice")

CREATE_STUDY = (
    "from studies.models import Study; "
    "s = Study.objects.create(accession='ERP001'); "
    "print(s.pk, s.flow_run_id)"
)


def run(*command: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        list(command), cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout


def test_saving_a_study_triggers_a_run_a_worker_executes(tmp_path: Path) -> None:
    db = tmp_path / "django.sqlite3"
    env = {**os.environ, "DJANGO_TRIGGER_DB": str(db), "PYTHONDONTWRITEBYTECODE": "1"}
    python = sys.executable
    run(python, "manage.py", "migrate", "--noinput", env=env)
    run(str(SLUICE), "deploy", "flows/study_flow.py:process_study", "--name", "on-save",
        "--pool", "django", env=env)  # fmt: skip
    out = run(python, "manage.py", "shell", "-c", CREATE_STUDY, env=env)
    pk, run_id = out.strip().splitlines()[-1].split()
    with sqlite3.connect(db) as conn:
        stored = conn.execute(
            "SELECT flow_run_id FROM studies_study WHERE id = ?", (pk,)
        ).fetchone()
    assert stored == (run_id,)
    run(str(SLUICE), "worker", "start", "--pool", "django", "--run-once", env=env)
    try:
        record = get_backend().read_flow_run(run_id)
        assert record.state_type is StateType.COMPLETED, record
        assert record.parameters == {"accession": "ERP001", "study_id": int(pk)}
        assert DeploymentRun(record).state.result() == "processed ERP001"
    finally:
        close_backends()


CREATE_REQUEST = (
    "from analyses.models import AssemblyAnalysisRequest as R; "
    "r = R.objects.create(requested_study='ERP123'); "
    "print(r.pk)"
)
SEED_DEPLOYMENT = "Assemble and analyse a study/assembly_analysis_request_deployment"


def test_seed_001_receiver_verbatim_saves_the_id_of_the_run_it_created(tmp_path: Path) -> None:
    """workflows/signals.py holds seed 001's receiver as written: ``async_to_sync(run_deployment)``
    in a sync post_save handler. It must not warn (warnings are errors in the Django process)
    and must save the id of the run it created, which a worker then executes."""
    db = tmp_path / "django.sqlite3"
    env = {**os.environ, "DJANGO_TRIGGER_DB": str(db), "PYTHONDONTWRITEBYTECODE": "1"}
    python = sys.executable
    run(python, "manage.py", "migrate", "--noinput", env=env)
    run(str(SLUICE), "deploy", "flows/assembly_flow.py:assemble_and_analyse",
        "--name", "assembly_analysis_request_deployment", "--pool", "mgnify", env=env)  # fmt: skip
    out = run(python, "-W", "error", "manage.py", "shell", "-c", CREATE_REQUEST, env=env)
    pk = int(out.strip().splitlines()[-1])
    with sqlite3.connect(db) as conn:
        (metadata,) = conn.execute(
            "SELECT request_metadata FROM analyses_assemblyanalysisrequest WHERE id = ?", (pk,)
        ).fetchone()
    run_id = json.loads(metadata)["flow_run_id"]
    backend: Any = get_backend()
    try:
        (created,) = backend.list_deployment_runs(SEED_DEPLOYMENT)  # one run: save() re-fired
        assert created.id == run_id
        assert created.parameters == {"accession": "ERP123", "request_id": pk}
        assert created.state_type is StateType.SCHEDULED
        close_backends()
        run(str(SLUICE), "worker", "start", "--pool", "mgnify", "--run-once", env=env)
        record = get_backend().read_flow_run(run_id)
        assert record.state_type is StateType.COMPLETED, record
        assert record.state.result() == "assembled ERP123"
    finally:
        close_backends()
