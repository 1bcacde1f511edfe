"""Only leads see statistics and exports: annotators never (it would bias them), engineers not
through this API (they work with snapshots and jobs in their own pages and the admin)."""

from rest_framework.permissions import BasePermission

STATISTICS_PERMISSION = "labeling_app.view_campaign_statistics"


def is_lead(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(STATISTICS_PERMISSION))


class IsLead(BasePermission):
    message = "Only leads can use the statistics API. Ask an administrator for the lead role."

    def has_permission(self, request, view) -> bool:
        return is_lead(request.user)
