from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "studies"

    def ready(self) -> None:
        # Registers the post_save receiver.
        from studies import signals  # noqa: F401
