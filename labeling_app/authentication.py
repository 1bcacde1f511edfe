"""Who is logged in, read from a cache shared by every web process instead of two queries.

Every authenticated request loads its session row and its user row before the view runs; on
the vote, the hottest request, those two queries were a fifth of its cost. Sessions use
Django's ``cached_db`` engine and users this backend, both on the ``shared`` cache (Redis when
``HER_CACHE_URL`` is set, else files under ``VAR_DIR/cache``), so every process sees the same
entries: logging out deletes the session from the cache and the database at once, and saving
a user (deactivation, a password change, ``last_login``) deletes their cached row.

Not known to the cache: a change made without ``save()`` (``QuerySet.update()`` on users, raw
SQL, a restored dump). Such changes take effect when the entry expires (``USER_CACHE_SECONDS``)
or when the ``shared`` cache is cleared.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.core.cache import caches

SHARED_CACHE = "shared"
# Bounds how long a change made behind the ORM's back (see above) can go unnoticed.
USER_CACHE_SECONDS = 300


def user_cache_key(user_id) -> str:
    return f"auth-user:{user_id}"


class CachedModelBackend(ModelBackend):
    """``ModelBackend`` whose ``get_user`` reads the shared cache first; logging in is unchanged."""

    def get_user(self, user_id):
        cache = caches[SHARED_CACHE]
        key = user_cache_key(user_id)
        user = cache.get(key)
        if user is None:
            user = super().get_user(user_id)  # None for a missing or inactive user: not cached
            if user is not None:
                cache.set(key, user, USER_CACHE_SECONDS)
        if user is None or not self.user_can_authenticate(user):
            return None
        return user


def forget_user(sender, instance=None, user=None, **kwargs) -> None:
    """Receiver of the user's ``post_save``/``post_delete`` and of ``user_logged_out``."""
    target = instance if instance is not None else user
    if target is not None and target.pk is not None:
        caches[SHARED_CACHE].delete(user_cache_key(target.pk))
