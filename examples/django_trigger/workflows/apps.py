from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"

    def ready(self) -> None:
        # Registers the post_save receivers.
        from workflows import signals  # noqa: F401
