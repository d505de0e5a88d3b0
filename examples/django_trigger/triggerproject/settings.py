"""Settings of the example project: SQLite, the apps below, nothing else.

``studies`` triggers a run with ``run_deployment`` called plainly;
``analyses`` + ``workflows`` are seed 001's pattern (``async_to_sync(run_deployment)``
in ``workflows/signals.py``).

``DJANGO_TRIGGER_DB`` moves the database file (the test puts it in a temporary folder).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-only-not-secret"
DEBUG = True
ALLOWED_HOSTS: list[str] = []
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "studies.apps.StudiesConfig",
    "analyses.apps.AnalysesConfig",
    "workflows.apps.WorkflowsConfig",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_TRIGGER_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
