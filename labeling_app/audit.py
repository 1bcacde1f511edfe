"""The audit trail: who created or changed the records that decide what is compared and trained
(review items and gold answers included).

django-auditlog records every create, update and delete of the models below (with the changed
fields, the user from the request, and the time). Leads read it at /lead/audit/. Comparisons
are not audited: they are never edited, and the vote's hot path writes them with raw SQL.
"""

from auditlog.registry import auditlog


def register() -> None:
    from labeling_app.models import AgentVariant, Campaign, GoldAnswer, PreferenceSnapshot, ReviewItem, Scenario

    for model in (AgentVariant, Campaign, Scenario, PreferenceSnapshot, ReviewItem, GoldAnswer):
        if not auditlog.contains(model):
            auditlog.register(model)
