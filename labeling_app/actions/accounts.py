"""Accounts: leads deactivating and reactivating annotators."""

from __future__ import annotations

from django.db import transaction

from labeling_app.authentication import end_sessions_of


def do_set_active(users, active: bool) -> int:
    """Deactivate (or reactivate) ``users``; returns how many changed.

    Each user is saved, so the shared user cache forgets them and a deactivated user's sessions
    end at once (``authentication.end_sessions_of_inactive``). Before a reactivation every old
    session is deleted too: one left over from a deactivation written behind the ORM's back
    (a bulk update) must not come back to life with the account.
    """
    changed = [user for user in users if user.is_active != active]
    if active and changed:
        end_sessions_of(*(user.pk for user in changed))
    with transaction.atomic():
        for user in changed:
            user.is_active = active
            user.save(update_fields=["is_active"])
    return len(changed)
