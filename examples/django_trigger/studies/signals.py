"""Trigger the deployment ``process-study/on-save`` when a Study is created."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from sluice.deployments import run_deployment
from studies.models import Study

DEPLOYMENT = "process-study/on-save"


@receiver(post_save, sender=Study)
def on_study_saved(sender: type[Study], instance: Study, created: bool, **kwargs: object) -> None:
    if not created:
        return
    # timeout=0: create the run and return at once; a worker executes it. The
    # idempotency key makes a signal that fires twice for one study reuse the run.
    run = run_deployment(
        DEPLOYMENT,
        parameters={"accession": instance.accession, "study_id": instance.pk},
        timeout=0,
        idempotency_key=f"study-{instance.pk}",
    )
    instance.flow_run_id = str(run.id)
    # update(), not save(): saving again would send post_save again.
    Study.objects.filter(pk=instance.pk).update(flow_run_id=instance.flow_run_id)
