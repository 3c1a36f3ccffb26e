"""Browser sessions over the real app: sign-in form, cookie, CSRF, expiry, sign-out, and the pages.

Each test serves the app on loopback over a fresh SQLite file (the household of
tests/api/seeding.py, an admin and a viewer who sees the grid meter) and drives it with httpx
clients, which keep cookies as a browser does. The idle tests give the running app a
WebSessions with a clock of theirs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
import pytest
from httpx import Response

from meterhub.api import security
from meterhub.api.websession import WebSessions
from meterhub.model import UserRole
from tests.api.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    USER_PASSWORD,
    ApiServer,
    no_unexpected_errors,
    password_hash,
    serve_api,
)
from tests.api.seeding import seed_household
from tests.web.helpers import form_token, post_sign_in, signed_in

__all__ = ["no_unexpected_errors", "serve_api"]

COOKIE = "meterhub_session"
VIEWER = "vera"


class Hub:
    """A hub served on loopback over a seeded SQLite file, with a viewer who sees the grid meter."""

    def __init__(self, api: ApiServer) -> None:
        self.api = api
        self.app = api.app
        self.store = api.store
        self.admin_key = api.admin_key
        seed_household(api.store)
        api.store.add_user(VIEWER, UserRole.VIEWER, password_hash(USER_PASSWORD))
        api.store.share(VIEWER, "meter", "grid")

    def browser(self, *, tls_proxy: bool = False) -> httpx.Client:
        """Return a client keeping cookies like a browser; behind a TLS proxy, if asked."""
        client = self.api.client()
        if tls_proxy:  # what a reverse proxy terminating https tells the hub on loopback
            client.headers["X-Forwarded-Proto"] = "https"
        return client


@pytest.fixture
def build(serve_api: Callable[..., ApiServer]) -> Callable[..., Hub]:
    """Return ``build(**settings)``: a running hub on a fresh seeded database."""
    return lambda **overrides: Hub(serve_api(api_rate_per_s=0, **overrides))


@pytest.fixture
def hub(build: Callable[..., Hub]) -> Hub:
    return build()


def page_csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]*)">', html)
    assert found is not None, html[:500]
    return found.group(1)


def csrf_of(client: httpx.Client) -> str:
    overview = client.get("/")
    assert overview.status_code == 200
    token = page_csrf(overview.text)
    assert token
    return token


def set_cookies(answer: Response) -> dict[str, str]:
    """Return each cookie the answer sets, by name, with its attributes as sent."""
    return {line.split("=", 1)[0]: line for line in answer.headers.get_list("set-cookie")}


def stranger_with(hub: Hub, cookie: str) -> httpx.Client:
    client = hub.browser()
    client.cookies.set(COOKIE, cookie)
    return client


# --- signing in ---------------------------------------------------------------------------
def test_signing_in_through_the_form_sets_a_strict_httponly_session_cookie(hub: Hub) -> None:
    client = hub.browser()
    form = client.get("/login")
    assert "meterhub_login_csrf" in set_cookies(form)
    answer = post_sign_in(client, next_="/meters/grid?range=week")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/meters/grid?range=week"
    cookie = set_cookies(answer)[COOKIE].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "secure" not in cookie.split(";", 1)[1]  # plain http: a Secure cookie would never return
    who = client.get("/api/v1/session")
    assert who.status_code == 200 and who.json()["user"] == ADMIN


def test_over_https_the_cookies_are_secure(hub: Hub) -> None:
    client = hub.browser(tls_proxy=True)
    form = client.get("/login")
    login_cookie = set_cookies(form)["meterhub_login_csrf"]
    assert "; secure" in login_cookie.lower()
    # a Secure cookie never goes back over this test's plain loopback: send it as a browser on https would
    value = login_cookie.split(";", 1)[0].split("=", 1)[1]
    fields = {"username": ADMIN, "password": ADMIN_PASSWORD, "csrf_token": form_token(form.text), "next": "/"}
    answer = client.post(
        "/login", data=fields, headers={"Cookie": f"meterhub_login_csrf={value}"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    session = set_cookies(answer)[COOKIE].lower()
    assert "; secure" in session and "httponly" in session and "samesite=strict" in session
    cookie = set_cookies(answer)[COOKIE].split(";", 1)[0].split("=", 1)[1]
    assert hub.browser().get("/api/v1/session", headers={"Cookie": f"{COOKIE}={cookie}"}).status_code == 200


def test_a_wrong_password_shows_the_form_again_without_a_session(hub: Hub) -> None:
    client = hub.browser()
    answer = post_sign_in(client, ADMIN, "not-the-password")
    assert answer.status_code == 400
    assert "Wrong user name or password." in answer.text
    assert 'name="csrf_token"' in answer.text
    assert COOKIE not in set_cookies(answer)
    assert client.get("/api/v1/session").status_code == 401
    assert post_sign_in(client, "nobody", ADMIN_PASSWORD).status_code == 400


@pytest.mark.parametrize("token", [None, "", "a-token-of-another-form"])
def test_sign_in_without_the_forms_own_token_is_refused(hub: Hub, token: str | None) -> None:
    client = hub.browser()
    assert client.get("/login").status_code == 200  # the browser holds the login cookie
    fields = {"username": ADMIN, "password": ADMIN_PASSWORD}
    if token is not None:
        fields["csrf_token"] = token
    answer = client.post("/login", data=fields, follow_redirects=False)
    assert answer.status_code == 400
    assert "The form expired" in answer.text
    assert COOKIE not in set_cookies(answer)
    assert client.get("/api/v1/session").status_code == 401


def test_a_form_token_without_its_cookie_is_refused(hub: Hub) -> None:
    token = form_token(hub.browser().get("/login").text)
    fresh = hub.browser()  # never saw the form, so has no login cookie
    fields = {"username": ADMIN, "password": ADMIN_PASSWORD, "csrf_token": token}
    assert fresh.post("/login", data=fields, follow_redirects=False).status_code == 400


@pytest.mark.parametrize(
    "target", ["//evil.example", "https://evil.example", "/\\evil", "http://evil.example/x", "evil", ""]
)
def test_next_never_leaves_the_hub(hub: Hub, target: str) -> None:
    client = hub.browser()
    answer = post_sign_in(client, next_=target)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


# --- the cookie on the API ------------------------------------------------------------------
def test_a_signed_in_browser_reads_the_api_and_the_dashboard_data_with_the_cookie_alone(hub: Hub) -> None:
    client = signed_in(hub.browser(), VIEWER, USER_PASSWORD)
    who = client.get("/api/v1/session")
    assert who.status_code == 200
    assert (who.json()["user"], who.json()["meters"]) == (VIEWER, ["grid"])
    cards = client.get("/api/v1/dashboard/overview")
    assert cards.status_code == 200
    assert [card["meter"] for card in cards.json()["cards"]] == ["grid"]
    view = client.get("/api/v1/dashboard/meters/grid/view", params={"range": "day", "anchor": "2026-03-02"})
    assert view.status_code == 200 and view.json()["meter"] == "grid"
    assert client.get("/api/v1/dashboard/meters/solar/view").status_code == 404


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_a_change_with_the_cookie_needs_the_sessions_csrf_header(hub: Hub, method: str) -> None:
    client = signed_in(hub.browser())
    token = csrf_of(client)
    key_id = security.issue_api_key(hub.store, ADMIN, "spare")[0].key_id
    path, body = (
        ("/api/v1/keys", {"name": "laptop"}) if method == "POST" else (f"/api/v1/keys/{key_id}", None)
    )
    refused = client.request(method, path, json=body)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    wrong = client.request(method, path, json=body, headers={"X-CSRF-Token": token + "x"})
    assert wrong.status_code == 403
    assert sorted(k.name for k in hub.store.list_api_keys(ADMIN)) == ["spare", "tests"]
    allowed = client.request(method, path, json=body, headers={"X-CSRF-Token": token})
    assert allowed.status_code in {201, 204}, allowed.text
    names = sorted(k.name for k in hub.store.list_api_keys(ADMIN) if not k.revoked)
    assert names == (["laptop", "spare", "tests"] if method == "POST" else ["tests"])


def test_a_put_with_the_cookie_needs_the_csrf_header_too(hub: Hub) -> None:
    client = signed_in(hub.browser())
    token = csrf_of(client)
    body = {"currency": "EUR", "import_per_kwh": 3.0, "export_per_kwh": 0.5, "fee_per_day": 1.0}
    assert client.put("/api/v1/places/home/tariff", json=body).status_code == 403
    assert (
        client.put("/api/v1/places/home/tariff", json=body, headers={"X-CSRF-Token": token}).status_code
        == 200
    )
    assert hub.store.get_place("home").tariff["import_per_kwh"] == 3.0


def test_a_session_csrf_token_does_not_open_another_session(hub: Hub) -> None:
    first, second = signed_in(hub.browser()), signed_in(hub.browser())
    token = csrf_of(first)
    assert csrf_of(second) != token
    assert second.post("/api/v1/keys", json={"name": "x"}, headers={"X-CSRF-Token": token}).status_code == 403


# --- signing out and ending -----------------------------------------------------------------
def test_signing_out_needs_the_form_token_and_then_ends_the_session(hub: Hub) -> None:
    client = signed_in(hub.browser())
    cookie = client.cookies[COOKIE]
    refused = client.post("/logout", data={"csrf_token": "guessed"}, follow_redirects=False)
    assert refused.status_code == 400
    assert client.post("/logout", follow_redirects=False).status_code == 400
    assert client.get("/api/v1/session").status_code == 200
    done = client.post("/logout", data={"csrf_token": csrf_of(client)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert COOKIE in set_cookies(done)  # deleted in the browser ...
    after = stranger_with(hub, cookie)  # ... and on the server, for whoever kept the value
    assert after.get("/api/v1/session").status_code == 401
    assert after.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"


def test_changing_ones_password_ends_the_session(hub: Hub) -> None:
    client = signed_in(hub.browser(), VIEWER, USER_PASSWORD)
    token = csrf_of(client)
    body = {"password": "a-new-password-1", "current_password": USER_PASSWORD}
    changed = client.put(f"/api/v1/users/{VIEWER}/password", json=body, headers={"X-CSRF-Token": token})
    assert changed.status_code == 204, changed.text
    assert client.get("/api/v1/session").status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303
    assert signed_in(hub.browser(), VIEWER, "a-new-password-1").get("/api/v1/session").status_code == 200


def test_an_admin_setting_a_password_ends_that_users_sessions(hub: Hub) -> None:
    client = signed_in(hub.browser(), VIEWER, USER_PASSWORD)
    assert client.get("/api/v1/session").status_code == 200
    admin = hub.browser()
    body = {"password": "set-by-the-admin-1"}
    answer = admin.put(f"/api/v1/users/{VIEWER}/password", json=body, headers={"X-API-Key": hub.admin_key})
    assert answer.status_code == 204, answer.text
    assert client.get("/api/v1/session").status_code == 401


def test_removing_a_user_ends_their_session(hub: Hub) -> None:
    client = signed_in(hub.browser(), VIEWER, USER_PASSWORD)
    assert client.get("/api/v1/session").status_code == 200
    admin = hub.browser()
    assert admin.delete(f"/api/v1/users/{VIEWER}", headers={"X-API-Key": hub.admin_key}).status_code == 204
    assert client.get("/api/v1/session").status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303


class Clock:
    """A clock the test moves by hand, for the sessions' idle and lifetime deadlines."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def with_clock(hub: Hub) -> tuple[Clock, WebSessions]:
    """Give the running app browser sessions on a clock of the test's (our own seam, not a patch)."""
    clock = Clock()
    sessions = WebSessions(hub.app.state.auth, clock=clock)
    hub.app.state.web_sessions = sessions
    return clock, sessions


def later(clock: Clock, sessions: WebSessions, seconds: float) -> None:
    """Move the clock on; a checked session is reused for a few real seconds, so drop those."""
    clock.advance(seconds)
    sessions.forget()


def test_a_session_idle_longer_than_the_limit_ends(build: Callable[..., Hub]) -> None:
    hub = build(web_session_idle_s=60)
    clock, sessions = with_clock(hub)
    client = signed_in(hub.browser())
    assert client.get("/api/v1/session").status_code == 200
    later(clock, sessions, 59)
    assert client.get("/api/v1/session").status_code == 200
    idle = signed_in(hub.browser())
    later(clock, sessions, 61)
    assert idle.get("/api/v1/session").status_code == 401
    assert idle.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"


def test_a_session_in_use_lives_past_its_idle_limit(build: Callable[..., Hub]) -> None:
    hub = build(web_session_idle_s=600)
    clock, sessions = with_clock(hub)
    client = signed_in(hub.browser())
    for _ in range(12):  # an hour, used every five minutes
        later(clock, sessions, 300)
        assert client.get("/api/v1/session").status_code == 200
    later(clock, sessions, 601)
    assert client.get("/api/v1/session").status_code == 401


def test_a_session_used_every_30_s_outlives_a_60_s_idle_limit(build: Callable[..., Hub]) -> None:
    hub = build(web_session_idle_s=60)
    clock, sessions = with_clock(hub)
    client = signed_in(hub.browser())
    for step in range(6):
        later(clock, sessions, 30)
        assert client.get("/api/v1/session").status_code == 200, f"after {30 * (step + 1)} s"


def test_a_session_ends_at_its_lifetime_even_in_use(build: Callable[..., Hub]) -> None:
    hub = build(web_session_idle_s=3600, refresh_token_ttl_s=7200)
    clock, sessions = with_clock(hub)
    client = signed_in(hub.browser())
    for _ in range(3):
        later(clock, sessions, 2000)
        assert client.get("/api/v1/session").status_code == 200
    later(clock, sessions, 1300)  # 7300 s after sign-in
    assert client.get("/api/v1/session").status_code == 401


# --- pages ----------------------------------------------------------------------------------
def test_a_viewer_sees_only_shared_meters_on_the_overview(hub: Hub) -> None:
    viewer = signed_in(hub.browser(), VIEWER, USER_PASSWORD)
    html = viewer.get("/").text
    assert re.findall(r'data-meter="([^"]+)"', html) == ["grid"]
    admin = signed_in(hub.browser())
    assert sorted(re.findall(r'data-meter="([^"]+)"', admin.get("/").text)) == ["grid", "secret", "solar"]


def test_a_viewer_gets_the_404_page_for_an_unshared_meter(hub: Hub) -> None:
    viewer = signed_in(hub.browser(), VIEWER, USER_PASSWORD)
    hidden = viewer.get("/meters/solar")
    assert hidden.status_code == 404
    assert "text/html" in hidden.headers["content-type"]
    assert "There is no meter &#39;solar&#39; you may see." in hidden.text
    assert "Main fuse" not in hidden.text and "PV" not in re.sub(r"<[^>]+>", " ", hidden.text).split()
    missing = viewer.get("/meters/nothing-here")
    assert missing.status_code == 404
    shown = viewer.get("/meters/grid")
    assert shown.status_code == 200 and "Main fuse" in shown.text


@pytest.mark.parametrize("path", ["/login", "/", "/meters/grid", "/docs"])
def test_pages_carry_a_csp_without_inline_scripts(hub: Hub, path: str) -> None:
    client = signed_in(hub.browser()) if path != "/login" else hub.browser()
    answer = client.get(path)
    assert answer.status_code == 200
    policy = {
        part.split()[0]: part.split()[1:]
        for part in answer.headers["content-security-policy"].split(";")
        if part
    }
    assert policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", answer.text), "an inline script"


def test_docs_sends_a_browser_without_a_session_to_sign_in(hub: Hub) -> None:
    answer = hub.browser().get("/docs", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fdocs"
    back = post_sign_in(hub.browser(), next_="/docs")
    assert back.headers["location"] == "/docs"


def test_docs_with_a_session_loads_only_local_scripts(hub: Hub) -> None:
    client = signed_in(hub.browser())
    answer = client.get("/docs")
    assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]
    scripts = re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", answer.text)
    assert scripts and all(src.startswith(("/docs/assets/", "/static/")) for src in scripts), scripts
    assert "http://" not in answer.text and "https://" not in answer.text
    for src in scripts:
        assert client.get(src).status_code == 200, src
    assert client.get("/openapi.json").json()["info"]["title"] == "meterhub"


def test_swagger_ui_and_plotly_come_from_the_installed_packages(hub: Hub) -> None:
    client = hub.browser()
    swagger = client.get("/docs/assets/swagger-ui-bundle.js")
    assert swagger.status_code == 200 and "javascript" in swagger.headers["content-type"]
    assert "SwaggerUIBundle" in swagger.text
    plain = client.get("/static/vendor/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "javascript" in plain.headers["content-type"]
    assert "content-encoding" not in plain.headers
    packed = client.get("/static/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(plain.content) / 2
    assert packed.content == plain.content  # httpx unpacked it
    assert b"plotly" in plain.content[:2000].lower()
