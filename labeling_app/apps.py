from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save


def _sync_roles_after_migrate(sender, **kwargs) -> None:
    from labeling_app.roles import sync_roles

    sync_roles()


class LabelingAppConfig(AppConfig):
    name = "labeling_app"
    verbose_name = "Labeling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out

        from labeling_app import audit
        from labeling_app.authentication import end_sessions_of_inactive, forget_user

        audit.register()

        # After migrate the permission rows exist; the role groups are kept in step with them.
        post_migrate.connect(_sync_roles_after_migrate, sender=self)
        # A saved, deleted or logged-out user is read from the database again by every process.
        user = get_user_model()
        post_save.connect(forget_user, sender=user, dispatch_uid="forget-user-on-save")
        post_delete.connect(forget_user, sender=user, dispatch_uid="forget-user-on-delete")
        user_logged_out.connect(forget_user, dispatch_uid="forget-user-on-logout")
        # A user saved as inactive (deactivated) loses every session at once.
        post_save.connect(end_sessions_of_inactive, sender=user, dispatch_uid="end-sessions-of-inactive")
