"""The flow the Django app triggers: fetch a study (here: pretend to) and report it."""

from sluice import flow, get_run_logger, task


@task(retries=2)
def fetch(accession: str) -> dict[str, str]:
    return {"accession": accession, "reads": f"{accession}_1.fastq.gz"}


@flow(name="process-study")
def process_study(accession: str, study_id: int) -> str:
    study = fetch(accession)
    get_run_logger().info("Study %s (id %d): %s", accession, study_id, study["reads"])
    return f"processed {accession}"
