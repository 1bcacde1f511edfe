"""The three roles of the site as Django groups, and the permissions each one carries.

annotator  holds rounds and judges pairs; sees only their own work
engineer   manages agent variants, freezes snapshots, launches and watches training jobs
lead       plans campaigns, audits data and annotators, exports; sees everything read-only

``sync_roles`` runs after every migrate, so the groups always match this table.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

ANNOTATOR = "annotator"
ENGINEER = "engineer"
LEAD = "lead"
ROLES = (ANNOTATOR, ENGINEER, LEAD)

_VIEW_ALL = [
    "view_agentvariant", "view_campaign", "view_scenario", "view_assignment", "view_round",
    "view_candidate", "view_comparison", "view_preferencesnapshot", "view_trainingjob",
    "view_trainingmetric",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    ANNOTATOR: ["label_campaign"],
    ENGINEER: [
        *_VIEW_ALL,
        "add_agentvariant", "change_agentvariant",
        "export_comparisons", "add_preferencesnapshot",
        "add_trainingjob", "change_trainingjob",
    ],
    LEAD: [
        *_VIEW_ALL,
        "add_campaign", "change_campaign", "add_scenario", "change_scenario",
        "change_assignment", "change_agentvariant",
        # Review and gold items (models.reviews): what more annotators judge, and known answers.
        "view_reviewitem", "add_reviewitem", "change_reviewitem",
        "view_goldanswer", "add_goldanswer", "change_goldanswer",
        "view_campaign_statistics", "export_comparisons", "add_preferencesnapshot",
        # Deactivate and reactivate annotators (admin.AnnotatorAdmin limits what else they see),
        # read the login lockouts and lift one by deleting it (django-axes).
        "auth.view_user", "auth.change_user",
        "axes.view_accessattempt", "axes.delete_accessattempt", "axes.view_accessfailurelog",
    ],
}


def sync_roles() -> None:
    """Create the role groups and set exactly the permissions listed above (a bare codename
    is labeling_app's; another app's is written ``app_label.codename``)."""
    with transaction.atomic():
        for role, names in ROLE_PERMISSIONS.items():
            group, _ = Group.objects.get_or_create(name=role)
            wanted = {tuple(name.split(".")) if "." in name else ("labeling_app", name) for name in names}
            permissions = [
                permission for permission in Permission.objects.filter(
                    content_type__app_label__in={app for app, _ in wanted}, codename__in={c for _, c in wanted}
                ).select_related("content_type")
                if (permission.content_type.app_label, permission.codename) in wanted
            ]
            found = {(p.content_type.app_label, p.codename) for p in permissions}
            missing = {".".join(pair) for pair in wanted - found}
            if missing:
                raise RuntimeError(f"Role {role!r} names unknown permissions: {sorted(missing)}")
            group.permissions.set(permissions)


def create_user_with_role(username: str, password: str, role: str, email: str = ""):
    """Create (or update the password and role of) a user; engineers and leads get admin access."""
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    User = get_user_model()
    with transaction.atomic():
        user, _ = User.objects.get_or_create(username=username, defaults={"email": email})
        user.set_password(password)
        user.is_staff = role in (ENGINEER, LEAD)
        user.save()
        user.groups.set([Group.objects.get(name=role)])
    return user


def role_of(user) -> str | None:
    """The user's role name, or None (superusers count as leads)."""
    if not user.is_authenticated:
        return None
    names = {group.name for group in user.groups.all()}
    for role in (LEAD, ENGINEER, ANNOTATOR):
        if role in names:
            return role
    return LEAD if user.is_superuser else None
