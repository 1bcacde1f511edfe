"""Who is logged in: sessions and users from a cache shared by every web process, checked
against the database's two columns that can end a session.

Every authenticated request loads its session and its user before the view runs; on the vote,
the hottest request, loading both through the ORM was a fifth of its cost. Sessions use
Django's ``cached_db`` engine and users this backend, both on the ``shared`` cache (Redis when
``HER_CACHE_URL`` is set, else files under ``VAR_DIR/cache``), so every process sees the same
entries.

A cached user is still checked on every request with one indexed read of ``is_active`` and
``password``: a deactivation or a password change ends the user's sessions on their next
request on any process, however it was written (``save()``, a bulk ``update()``, raw SQL, a
restored dump). A change there drops the cached entry and the user is loaded again; an inactive
user is anonymous, and ``middleware.EndedSessionMiddleware`` flushes the session. Deactivating
through ``save()`` also deletes every stored session of the user at once (``end_sessions_of``),
so none lies dormant until a later reactivation.

Other fields (name, staff flag, groups) are read from the cache until it expires
(``USER_CACHE_SECONDS``) or the user is saved.
"""

from __future__ import annotations

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.cached_db import KEY_PREFIX as SESSION_CACHE_PREFIX
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection
from django.utils import timezone

SHARED_CACHE = "shared"
# Bounds how long a change of the other fields made behind the ORM's back goes unnoticed.
USER_CACHE_SECONDS = 300


def user_cache_key(user_id) -> str:
    return f"auth-user:{user_id}"


def _current_columns(user_id) -> tuple[bool, str] | None:
    """``(is_active, password)`` of the user's row as stored now; None when it is gone."""
    User = get_user_model()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote('is_active')}, {quote('password')} FROM {quote(User._meta.db_table)} "
                       f"WHERE {quote(User._meta.pk.column)} = %s", [user_id])
        row = cursor.fetchone()
    return (bool(row[0]), row[1]) if row else None


class CachedModelBackend(ModelBackend):
    """``ModelBackend`` whose ``get_user`` reads the shared cache first, checked against the
    stored active flag and password; logging in is unchanged."""

    def get_user(self, user_id):
        cache = caches[SHARED_CACHE]
        key = user_cache_key(user_id)
        user = cache.get(key)
        if user is not None:
            current = _current_columns(user.pk)
            if current is None or not current[0]:
                cache.delete(key)
                return None
            if current != (user.is_active, user.password):
                cache.delete(key)
                user = None
        if user is None:
            user = super().get_user(user_id)  # None for a missing or inactive user: not cached
            if user is not None:
                cache.set(key, user, USER_CACHE_SECONDS)
        if user is None or not self.user_can_authenticate(user):
            return None
        return user


def end_sessions_of(*user_ids) -> int:
    """Delete every stored session of these users, from the database and the shared cache.

    Sessions are not indexed by user: this decodes each unexpired one, which is fine for what
    calls it (a deactivation or reactivation), never for a request path. Returns how many
    sessions were deleted.
    """
    wanted = {str(user_id) for user_id in user_ids}
    cache = caches[SHARED_CACHE]
    ended = [session.session_key for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
             if session.get_decoded().get(SESSION_KEY) in wanted]
    for start in range(0, len(ended), 500):
        batch = ended[start:start + 500]
        Session.objects.filter(session_key__in=batch).delete()
        cache.delete_many([SESSION_CACHE_PREFIX + session_key for session_key in batch])
    return len(ended)


def forget_user(sender, instance=None, user=None, **kwargs) -> None:
    """Receiver of the user's ``post_save``/``post_delete`` and of ``user_logged_out``."""
    target = instance if instance is not None else user
    if target is not None and target.pk is not None:
        caches[SHARED_CACHE].delete(user_cache_key(target.pk))


def end_sessions_of_inactive(sender, instance, **kwargs) -> None:
    """Receiver of the user's ``post_save``: a saved inactive user keeps no session."""
    if not instance.is_active:
        end_sessions_of(instance.pk)
