"""Flow-invoking model hooks, as seed 001 ("Writing Prefect flows for MGnify") registers
them, with ``prefect`` replaced by ``sluice``. The receiver is the seed's, verbatim:
``async_to_sync(run_deployment)(...)`` from a sync Django signal handler."""

# ruff: noqa: E501, E701
# fmt: off
import analyses.models
from asgiref.sync import async_to_sync
from django.db.models.signals import post_save
from django.dispatch import receiver

from sluice.deployments import run_deployment


@receiver(post_save, sender=analyses.models.AssemblyAnalysisRequest)
def on_assembly_analysis_saved(sender, instance: analyses.models.AssemblyAnalysisRequest, created, **kwargs):
    if not created: return
    flowrun = async_to_sync(run_deployment)(
        "Assemble and analyse a study/assembly_analysis_request_deployment", # <-- naming here is NOT arbitrary
        timeout=0,
        parameters={
            "accession": instance.requested_study,
            "request_id": instance.id,
        },
    )
    instance.request_metadata['flow_run_id'] = str(flowrun.id) # <-- potentially useful to save this for admin purposes
    instance.save()
