"""Guards every response carries: a 400 for bodies the site cannot decode, on every URL, and a
strict Content-Security-Policy."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern

from labeling_app.middleware import body_problem
from tests.labeling_app.conftest import make_campaign, make_ready_round

pytestmark = pytest.mark.django_db

SAMPLE_BY_CONVERTER = {"int": "1", "uuid": str(uuid.uuid4()), "path": "1", "str": "1", "slug": "x"}
# Bodies whose charset or encoding the site cannot decode (each was a 500 before).
UNDECODABLE = [
    ("application/x-www-form-urlencoded; charset=latin-1", b"a=b", {}),
    ("application/x-www-form-urlencoded; charset=utf-16", "a=b".encode("utf-16"), {}),
    ("application/x-www-form-urlencoded; charset=no-such-charset", b"a=b", {}),
    ("multipart/form-data; boundary=xyz; charset=no-such-charset",
     b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--xyz--\r\n', {}),
    ("application/x-www-form-urlencoded", b"\x1f\x8b\x08\x00", {"HTTP_CONTENT_ENCODING": "gzip"}),
]


def leaf_patterns(patterns=None, prefix: str = ""):
    """Every URL pattern of the URLconf with its full route, included ones and the admin's too."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from leaf_patterns(pattern.url_patterns, prefix + _route_of(pattern.pattern))
        else:
            yield prefix + _route_of(pattern.pattern), pattern


def _route_of(pattern) -> str:
    if isinstance(pattern, RoutePattern):
        return re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE_BY_CONVERTER[m.group(1) or "str"], str(pattern))
    assert isinstance(pattern, RegexPattern), pattern
    # A named group takes the first sample value its own sub-pattern matches.
    route = str(pattern).lstrip("^").rstrip("$")

    def sample(group: re.Match) -> str:
        body = group.group(1)
        options = [*body.split("|"), "1", "x"] if re.fullmatch(r"[\w|]+", body) else ["1", "x"]
        return next(option for option in options if re.fullmatch(body, option))

    route = re.sub(r"\(\?P<\w+>([^)]*)\)", sample, route)
    return re.sub(r"\\(.)", r"\1", route)  # an escaped character stands for itself


def sample_urls() -> list[str]:
    urls = []
    for route, pattern in leaf_patterns():
        assert isinstance(pattern, URLPattern)
        url = "/" + route
        resolve(url)  # the sample path reaches a view (raises Resolver404 otherwise)
        urls.append(url)
    return urls


def test_the_sweep_covers_the_whole_urlconf_including_every_post_endpoint():
    urls = sample_urls()
    assert len(urls) > 60  # the site's own URLs and the admin's
    for name in ("labeling:vote", "labeling:upload", "labeling:next", "labeling:release", "login", "logout",
                 "admin:login", "admin:auth_user_changelist"):
        assert any(resolve(url).view_name == name for url in urls), name


@pytest.mark.parametrize("content_type, body, extra", UNDECODABLE)
def test_an_undecodable_body_is_a_400_on_every_url(content_type, body, extra, annotator, media_root):
    from django.contrib.auth import get_user_model

    round_ = make_ready_round(make_campaign().scenarios.get(), annotator)
    superuser = get_user_model().objects.create_superuser("root", "root@example.org", "root-pass-123456")
    clients = [Client(), Client(), Client()]  # anonymous, the annotator, a superuser (the admin's views)
    clients[1].force_login(annotator)
    clients[2].force_login(superuser)
    urls = sample_urls() + [f"/label/round/{round_.public_id}/vote/", f"/label/item/{round_.assignment_id}/upload/"]
    for client in clients:
        for url in urls:
            response = client.generic("POST", url, body, content_type=content_type, **extra)
            assert response.status_code == 400, (url, response.status_code)
            assert b"UTF-8" in response.content or b"uncompressed" in response.content
    answer = clients[1].generic("POST", urls[-2], body, content_type=content_type, HTTP_ACCEPT="application/json",
                                **extra)
    assert answer.status_code == 400 and answer.json()["error"]


def test_utf8_and_ascii_bodies_pass_the_guard(rf):
    for content_type in ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=UTF-8",
                         'multipart/form-data; boundary=x; charset="utf8"', "text/plain; charset=latin-1",
                         "application/x-www-form-urlencoded; charset=us-ascii"):
        assert body_problem(rf.post("/", b"a=b", content_type=content_type)) == "", content_type


def test_every_page_carries_a_strict_content_security_policy(client, annotator, media_root):
    round_ = make_ready_round(make_campaign().scenarios.get(), annotator)
    client.force_login(annotator)
    for url in ("/accounts/login/", "/label/", f"/label/round/{round_.public_id}/compare/", "/label/history/",
                "/label/guidelines/"):
        response = client.get(url)
        assert response.status_code == 200, url
        policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
        assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'", url
        assert policy["style-src"] == "'self'" and policy["object-src"] == "'none'", url
        assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'", url
        html = response.content.decode()
        # The policy allows no inline code: every script is a file, no style attribute, no handler.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"\sstyle=|\son[a-z]+=", html), url
