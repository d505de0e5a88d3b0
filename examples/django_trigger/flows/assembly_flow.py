"""The flow seed 001's receiver triggers (its deployment's name is what the receiver calls)."""

from sluice import flow, get_run_logger


@flow(name="Assemble and analyse a study")
def assemble_and_analyse(accession: str, request_id: int) -> str:
    get_run_logger().info("Assembly analysis request %d: study %s", request_id, accession)
    return f"assembled {accession}"
