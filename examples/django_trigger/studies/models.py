from django.db import models


class Study(models.Model):
    """A study to fetch and process; saving a new one triggers a Sluice deployment run."""

    accession = models.CharField(max_length=32)
    #: the id of the flow run processing this study (set by the post_save receiver)
    flow_run_id = models.CharField(max_length=36, blank=True, default="")

    def __str__(self) -> str:
        return self.accession
