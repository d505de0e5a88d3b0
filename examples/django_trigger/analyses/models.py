from django.db import models


class AssemblyAnalysisRequest(models.Model):
    """A request to assemble and analyse a study (seed 001's model, reduced to what its
    receiver reads and writes)."""

    requested_study = models.CharField(max_length=32)
    #: what the admin may want to know; the receiver stores the flow run's id here
    request_metadata = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.requested_study
