"""Authentication over real loopback HTTP: token grants, refresh rotation, revocation, limits."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount, Route

from meterhub.api import security
from meterhub.api.limits import LoginThrottle, RateLimiter
from meterhub.model import UserRole
from tests.api.conftest import ADMIN, ADMIN_PASSWORD, USER_PASSWORD, ApiServer
from tests.api.webroutes import MOUNTS, PAGES, SIGN_IN

TOKEN = "/api/v1/auth/token"
PUBLIC = {("GET", "/healthz"), ("POST", TOKEN)}
"""API routes anyone may call; the dashboard's pages and assets are listed in the authz matrix."""
"""The only routes answered without credentials."""


def _problem(answer: httpx.Response, status: int) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = answer.json()
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_route_but_health_and_token_requires_auth(api: ApiServer, anon: httpx.Client) -> None:
    checked: set[tuple[str, str]] = set()
    bogus = api.client("mh_0123456789ab_" + "A" * 43)
    for context in iter_route_contexts(api.app.routes):
        route, path = context.original_route, str(context.path)
        if isinstance(route, Mount):
            assert path in MOUNTS, f"a new mount {path}: say whether it is public"
            assert anon.get(MOUNTS[path]).status_code == 200, path  # public assets, no data
            continue
        else:
            assert isinstance(route, APIRoute | Route), f"unexpected route type {route!r}: check its auth"
            targets = [(m, path) for m in sorted(context.methods or ()) if m not in {"HEAD", "OPTIONS"}]
        for method, target in targets:
            checked.add((method, target))
            answer = anon.request(method, _concrete(target))
            if (method, target) in PUBLIC:
                assert answer.status_code != 401, (method, target)
                continue
            if (method, target) in PAGES:  # a page sends a browser to sign in; it holds no data
                assert answer.status_code in (200, 303, 400, 404), (method, target, answer.status_code)
                if PAGES[(method, target)] == SIGN_IN:
                    assert answer.headers["location"].startswith("/login?next="), (method, target)
                continue
            _problem(answer, 401)
            assert answer.headers["www-authenticate"].startswith("Bearer"), (method, target)
            _problem(bogus.request(method, _concrete(target)), 401)
    assert checked >= PUBLIC
    assert {("GET", "/api/v1/session"), ("GET", "/metrics"), ("GET", "/openapi.json")} <= checked
    assert len(checked) >= 20


def test_password_grant_refresh_rotation_and_reuse(api: ApiServer) -> None:
    tokens = api.login()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900
    first = api.client(tokens["access_token"], how="bearer")
    assert first.get("/api/v1/session").json()["credential"] == "access_token"
    refresh = api.client().post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 200 and refresh.headers["cache-control"] == "no-store"
    rotated = refresh.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    second = api.client(rotated["access_token"], how="bearer")
    assert second.get("/api/v1/session").status_code == 200
    # The old refresh token was retired: using it again looks like theft and ends the session.
    again = api.client().post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert _problem(again, 400)["error"] == "invalid_grant"
    _problem(second.get("/api/v1/session"), 401)
    _problem(
        api.client().post(
            TOKEN, data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]}
        ),
        400,
    )


def test_a_session_keeps_its_used_refresh_records_until_they_expire(api: ApiServer) -> None:
    refresh = api.login()["refresh_token"]
    for _ in range(4):
        answer = api.client().post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": refresh})
        refresh = answer.json()["refresh_token"]
    with sqlite3.connect(api.database_url.removeprefix("sqlite:///")) as conn:
        values = [row[0] for row in conn.execute("SELECT value FROM tokens WHERE scope = 'refresh'")]
    # The live token and every one it replaced, so that a replay of any of them is noticed.
    assert sorted('"used":true' in value for value in values) == [False, True, True, True, True]
    assert (
        api.client().post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": refresh}).status_code
        == 200
    )


def test_revoke_ends_the_session_of_a_refresh_or_access_token(api: ApiServer, admin: httpx.Client) -> None:
    by_refresh, by_access = api.login(), api.login()
    assert admin.post("/api/v1/auth/revoke", data={"token": by_refresh["refresh_token"]}).status_code == 200
    _problem(api.client(by_refresh["access_token"], how="bearer").get("/api/v1/session"), 401)
    refreshed = api.client().post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": by_refresh["refresh_token"]}
    )
    assert _problem(refreshed, 400)["error"] == "invalid_grant"
    own = api.client(by_access["access_token"], how="bearer")
    assert own.post("/api/v1/auth/revoke", data={"token": by_access["access_token"]}).status_code == 200
    _problem(own.get("/api/v1/session"), 401)
    # Unknown tokens are ignored (RFC 7009); a missing token is a bad request.
    assert admin.post("/api/v1/auth/revoke", data={"token": "nonsense"}).status_code == 200
    assert _problem(admin.post("/api/v1/auth/revoke", data={}), 400)["error"] == "invalid_request"
    _problem(api.client().post("/api/v1/auth/revoke", data={"token": "x"}), 401)


def test_token_endpoint_reads_what_umeter_and_fastapi_clients_send(api: ApiServer) -> None:
    form = f"grant_type=password&username={ADMIN}&password={ADMIN_PASSWORD}"
    umeter_style = api.client().post(TOKEN, content=form, headers={"Content-Type": "application/json"})
    assert umeter_style.status_code == 200, umeter_style.text
    as_json = api.client().post(
        TOKEN, json={"grant_type": "password", "username": ADMIN, "password": ADMIN_PASSWORD}
    )
    assert as_json.status_code == 200
    multipart = api.client().post(
        TOKEN,
        files={
            "grant_type": (None, "password"),
            "username": (None, ADMIN),
            "password": (None, ADMIN_PASSWORD),
        },
    )
    assert multipart.status_code == 200, multipart.text
    for body, error in (
        ({"grant_type": "password", "username": ADMIN}, "invalid_request"),
        ({"username": ADMIN, "password": ADMIN_PASSWORD}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"grant_type": "password", "username": ADMIN, "password": "wrong-password"}, "invalid_grant"),
        ({"grant_type": "password", "username": "nobody", "password": "wrong-password"}, "invalid_grant"),
        ({"grant_type": "refresh_token", "refresh_token": "mhr_unknown"}, "invalid_grant"),
    ):
        assert _problem(api.client().post(TOKEN, data=body), 400)["error"] == error
    _problem(
        api.client().post(TOKEN, content=b"{not json", headers={"Content-Type": "application/json"}), 400
    )
    _problem(api.client().post(TOKEN, content=b"x" * 20_000), 413)


def test_a_request_authenticates_three_ways(api: ApiServer) -> None:
    access = api.login()["access_token"]
    for credential in (api.admin_key, access):
        for how in ("bearer", "x-api-key", "query"):
            if (credential, how) == (access, "x-api-key"):
                continue
            answer = api.client(credential, how=how).get("/api/v1/session")
            assert answer.status_code == 200, (how, answer.text)
            assert answer.json()["user"] == ADMIN


def test_bad_credentials_answer_401_with_a_challenge(api: ApiServer) -> None:
    now = int(time.time())
    key = security.signing_key(api.store)
    claims = {"sub": ADMIN, "sid": "nope", "typ": "access", "iat": now, "exp": now + 60}
    expired = security.sign_access_token(key, {**api_claims(api), "iat": now - 120, "exp": now - 60})
    for credential in (
        "garbage",
        api.admin_key[:-2] + "xx",
        security.sign_access_token(b"another key", api_claims(api)),
        security.sign_access_token(key, claims),  # no such session
        expired,
    ):
        answer = api.client(credential, how="bearer").get("/api/v1/session")
        _problem(answer, 401)
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def api_claims(api: ApiServer) -> dict[str, object]:
    """Return the claims of a fresh, valid access token of the admin."""
    token = api.login()["access_token"]
    claims = security.read_access_token(security.signing_key(api.store), token, time.time())
    assert claims is not None
    return claims


def test_password_change_and_user_removal_end_sessions(api: ApiServer, admin: httpx.Client) -> None:
    api.user("bob", UserRole.MEMBER)
    session = api.client(api.login("bob", USER_PASSWORD)["access_token"], how="bearer")
    assert session.get("/api/v1/session").status_code == 200
    changed = admin.put("/api/v1/users/bob/password", json={"password": "a-new-password"})
    assert changed.status_code == 204
    _problem(session.get("/api/v1/session"), 401)
    session = api.client(api.login("bob", "a-new-password")["access_token"], how="bearer")
    assert admin.delete("/api/v1/users/bob").status_code == 204
    _problem(session.get("/api/v1/session"), 401)


def test_failed_logins_lock_out_per_user_and_per_address(serve_api: Callable[..., ApiServer]) -> None:
    api = serve_api(login_free_attempts=2, login_lock_base_s=60)
    api.user("bob", UserRole.VIEWER)
    other_address = httpx.Client(
        base_url=api.base_url, transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30
    )

    def sign_in(client: httpx.Client, name: str, password: str) -> httpx.Response:
        return client.post(TOKEN, data={"grant_type": "password", "username": name, "password": password})

    here = api.client()
    for _ in range(3):
        assert sign_in(here, ADMIN, "wrong-password").status_code == 400
    for client, name, password in (
        (here, ADMIN, ADMIN_PASSWORD),
        (other_address, ADMIN, ADMIN_PASSWORD),
        (here, "bob", USER_PASSWORD),
    ):
        locked = sign_in(client, name, password)
        _problem(locked, 429)
        assert 50 <= int(locked.headers["retry-after"]) <= 60
    assert sign_in(other_address, "bob", USER_PASSWORD).status_code == 200
    other_address.close()


def test_login_lockouts_double_up_to_the_cap() -> None:
    now = [0.0]
    throttle = LoginThrottle(free_attempts=2, base_s=1.0, max_s=10.0, clock=lambda: now[0])
    waits = []
    for _ in range(8):
        throttle.failed(["user:x"])
        waits.append(throttle.wait_s(["user:x", "addr:y"]))
    assert waits == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    throttle.succeeded("user:x")
    assert throttle.wait_s(["user:x"]) == 0.0


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k") == pytest.approx(0.5)
    assert limiter.take("other") == 0.0
    now[0] = 0.5
    assert limiter.take("k") == 0.0
    assert RateLimiter(rate_per_s=0, burst=1).take("k") == 0.0


def test_rate_limit_per_key_answers_429_with_retry_after(serve_api: Callable[..., ApiServer]) -> None:
    api = serve_api(api_rate_per_s=0.2, api_rate_burst=3)
    mine = api.client(api.admin_key)
    assert [mine.get("/api/v1/session").status_code for _ in range(3)] == [200, 200, 200]
    limited = mine.get("/api/v1/session")
    _problem(limited, 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 5
    other = api.user("bob", UserRole.VIEWER)
    assert other.get("/api/v1/session").status_code == 200
    session = api.client(api.login()["access_token"], how="bearer")
    assert session.get("/api/v1/session").status_code == 200  # a session has a bucket of its own


def test_docs_and_openapi_need_a_token_too(api: ApiServer, anon: httpx.Client) -> None:
    _problem(anon.get("/openapi.json"), 401)
    to_sign_in = anon.get("/docs")
    assert to_sign_in.status_code == 303 and to_sign_in.headers["location"] == "/login?next=%2Fdocs"
    page = api.client(api.admin_key, how="query").get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    # Swagger UI comes from the installed package; docs.js passes ?token= on to /openapi.json
    assert '<script src="/docs/assets/swagger-ui-bundle.js">' in page.text
    assert '<script src="/static/docs.js">' in page.text
    schema = api.client(api.admin_key, how="query").get("/openapi.json").json()
    assert TOKEN in schema["paths"] and "/api/v1/keys" in schema["paths"]
    assert set(schema["components"]["securitySchemes"]) == {
        "OAuth2PasswordBearer",
        "APIKeyHeader",
        "APIKeyQuery",
    }
