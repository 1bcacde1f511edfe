from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles_after_migrate(sender, **kwargs) -> None:
    from labeling_app.roles import sync_roles

    sync_roles()


class LabelingAppConfig(AppConfig):
    name = "labeling_app"
    verbose_name = "Labeling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # After migrate the permission rows exist; the role groups are kept in step with them.
        post_migrate.connect(_sync_roles_after_migrate, sender=self)
