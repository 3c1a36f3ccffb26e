"""Who may call what: a matrix over every route of the app, checked over real loopback HTTP.

Each route the app declares must appear in ``EXPECTED`` with the access it grants:

``PUBLIC``  answered without credentials (health and the token endpoint only);
``READ``    any signed-in user, for the meters and places shared with them;
``WRITE``   members and admins, never viewers (who only read);
``SELF``    a user's own account (password, keys): allowed on their own, refused on anyone else's;
``HOLDER``  whoever holds the token being revoked (RFC 7009);
``ADMIN``   admins only: users, shares, meters, places, tariffs and prices are theirs to manage.

The dashboard's pages and assets are not API routes: they are listed in ``PAGES`` (and the
static mounts in ``MOUNTS``) with what a browser without a session gets, checked on their own.

Every request is filled with ids that exist (a seeded meter, place, user, key and price series)
and a valid body, so the answer comes from the authorization check and not from validation;
the admin's (or the member's) own request then proves the same request goes through.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount

from meterhub.api import security
from meterhub.model import Extra, Meter, Place, Role, UserRole
from tests.api.conftest import USER_PASSWORD, ApiServer
from tests.api.seeding import OSLO, seed_household
from tests.api.webroutes import MOUNTS, PAGES, SIGN_IN

PRICES_CSV = "start,resolution,price,currency\n" + "".join(
    f"2026-03-02T{hour:02d}:00:00+00:00,60m,{0.1 * hour:.2f},EUR\n" for hour in range(24)
)
TARIFF = {"currency": "EUR", "import_per_kwh": 2.0, "export_per_kwh": 0.5, "fee_per_day": 1.0}


class Access(Enum):
    """What a route grants, and to whom."""

    PUBLIC = "public"
    READ = "read"
    WRITE = "write"
    SELF = "self"
    HOLDER = "holder"
    ADMIN = "admin"


@dataclass(frozen=True)
class Rule:
    """The access a route grants, the request that exercises it, and the status that means 'allowed'.

    ``ids`` replaces the default path ids (for a route that removes what it names); ``others``
    is the status a SELF route answers for someone else's account (403, or 404 for keys), asked
    with the path ids ``OTHERS_IDS`` or, when given, the body ``others_json``.
    """

    access: Access
    allowed: int = 200
    ids: dict[str, str] = field(default_factory=dict)
    json: Any = None
    content: str | None = None
    others: int = 403
    others_json: Any = None


DEFAULT_IDS = {
    "meter_id": "grid",
    "place_id": "home",
    "name": "vera",
    "kind": "meter",
    "object_id": "grid",
    "series": "spot",
    "key_id": "vera-spare",
}
"""Path ids every request uses unless its rule names others; ``vera-spare`` stands for a key id."""
OTHERS_IDS = {"name": "mark", "key_id": "mark-key"}
"""Path ids of the member's account, which the viewer of a SELF rule must not touch."""

R, W, S, A = Access.READ, Access.WRITE, Access.SELF, Access.ADMIN
EXPECTED: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): Rule(Access.PUBLIC),
    ("POST", "/api/v1/auth/token"): Rule(Access.PUBLIC),
    ("POST", "/api/v1/auth/revoke"): Rule(Access.HOLDER),
    ("GET", "/api/v1/session"): Rule(R),
    ("GET", "/metrics"): Rule(R),
    ("GET", "/openapi.json"): Rule(R),
    ("GET", "/api/v1/latest"): Rule(R),
    ("GET", "/api/v1/meters/{meter_id}/latest"): Rule(R),
    # users: admins manage them; a user may read their own and change their own password
    ("GET", "/api/v1/users"): Rule(A),
    ("POST", "/api/v1/users"): Rule(A, 201, json={"name": "newcomer", "password": USER_PASSWORD}),
    ("GET", "/api/v1/users/{name}"): Rule(S),
    ("PATCH", "/api/v1/users/{name}"): Rule(A, ids={"name": "spare"}, json={"role": "member"}),
    ("DELETE", "/api/v1/users/{name}"): Rule(A, 204, ids={"name": "doomed"}),
    ("PUT", "/api/v1/users/{name}/password"): Rule(
        S, 204, json={"password": "a-new-password-1", "current_password": USER_PASSWORD}
    ),
    ("GET", "/api/v1/users/{name}/shares"): Rule(S),
    ("PUT", "/api/v1/users/{name}/shares/{kind}/{object_id}"): Rule(A, ids={"name": "spare"}),
    ("DELETE", "/api/v1/users/{name}/shares/{kind}/{object_id}"): Rule(
        A, 204, ids={"name": "spare", "object_id": "solar"}
    ),
    # keys: everyone manages their own; someone else's key is not even shown to exist
    ("GET", "/api/v1/keys"): Rule(R),
    ("POST", "/api/v1/keys"): Rule(S, 201, json={"name": "more"}, others_json={"user": "mark"}),
    ("GET", "/api/v1/keys/{key_id}"): Rule(S, others=404),
    ("POST", "/api/v1/keys/{key_id}/rotate"): Rule(S, 201, ids={"key_id": "vera-rotate"}, others=404),
    ("DELETE", "/api/v1/keys/{key_id}"): Rule(S, 204, ids={"key_id": "vera-revoke"}, others=404),
    # meters: admins add, change and remove them; shared ones are read by everyone
    ("GET", "/api/v1/meters"): Rule(R),
    ("POST", "/api/v1/meters"): Rule(A, 201, json={"id": "new-meter", "vendor": "file"}),
    ("GET", "/api/v1/meters/{meter_id}"): Rule(R),
    ("PATCH", "/api/v1/meters/{meter_id}"): Rule(A, json={"name": "Main fuse"}),
    ("DELETE", "/api/v1/meters/{meter_id}"): Rule(A, 204, ids={"meter_id": "doomed"}),
    ("GET", "/api/v1/meters/{meter_id}/readings"): Rule(R),
    ("GET", "/api/v1/meters/{meter_id}/intervals"): Rule(R),
    ("GET", "/api/v1/meters/{meter_id}/energy"): Rule(R),
    ("GET", "/api/v1/meters/{meter_id}/cost"): Rule(R),
    ("GET", "/api/v1/meters/{meter_id}/analysis/power"): Rule(R),
    ("GET", "/api/v1/meters/{meter_id}/analysis/offline"): Rule(R),
    ("GET", "/api/v1/meters/{meter_id}/chart.png"): Rule(R),
    ("GET", "/api/v1/meters/{meter_id}/series"): Rule(R),
    ("GET", "/api/v1/meters/{meter_id}/series/{name}"): Rule(R, ids={"name": "temperature_c"}),
    # admins only; the matrix's file meter has no vendor key, so 422 shows the role check passed
    ("POST", "/api/v1/meters/{meter_id}/rotate-key"): Rule(A, 422),
    ("GET", "/api/v1/status"): Rule(R),
    ("GET", "/api/v1/status/prices"): Rule(R),
    ("GET", "/api/v1/meters/{meter_id}/status"): Rule(R),
    # a file meter has no relay: 409 says the request got past the role check
    ("GET", "/api/v1/meters/{meter_id}/relay"): Rule(R, 409),
    ("PUT", "/api/v1/meters/{meter_id}/relay"): Rule(W, 409, json={"state": "on"}),
    # places: admins manage them, their meters and their tariffs
    ("GET", "/api/v1/places"): Rule(R),
    ("POST", "/api/v1/places"): Rule(A, 201, json={"id": "new-place", "tz": OSLO}),
    ("GET", "/api/v1/places/{place_id}"): Rule(R),
    ("PATCH", "/api/v1/places/{place_id}"): Rule(A, json={"name": "Home"}),
    ("DELETE", "/api/v1/places/{place_id}"): Rule(A, 204, ids={"place_id": "doomed"}),
    ("PUT", "/api/v1/places/{place_id}/meters/{meter_id}"): Rule(A, json={"role": "grid"}),
    ("DELETE", "/api/v1/places/{place_id}/meters/{meter_id}"): Rule(
        A, ids={"place_id": "shed", "meter_id": "solar"}
    ),
    ("GET", "/api/v1/places/{place_id}/tariff"): Rule(R),
    ("PUT", "/api/v1/places/{place_id}/tariff"): Rule(A, json=TARIFF),
    ("GET", "/api/v1/places/{place_id}/energy"): Rule(R),
    ("GET", "/api/v1/places/{place_id}/cost"): Rule(R),
    ("GET", "/api/v1/places/{place_id}/capacity"): Rule(R),
    ("GET", "/api/v1/places/{place_id}/chart.png"): Rule(R),
    # prices: everyone reads them, admins import and delete
    ("GET", "/api/v1/prices"): Rule(R),
    ("GET", "/api/v1/prices/{series}"): Rule(R),
    ("POST", "/api/v1/prices/{series}"): Rule(A, content=PRICES_CSV),
    ("DELETE", "/api/v1/prices/{series}"): Rule(A, ids={"series": "doomed"}),
    ("GET", "/api/v1/export"): Rule(R),
    # the dashboard's data: any signed-in user, for the meters shared with them
    ("GET", "/api/v1/dashboard/overview"): Rule(R),
    ("GET", "/api/v1/dashboard/meters/{meter_id}/view"): Rule(R),
    ("GET", "/api/v1/events"): Rule(R),
    # ... and for the places shared with them
    ("GET", "/api/v1/dashboard/places/{place_id}/view"): Rule(R),
    ("GET", "/api/v1/dashboard/places/{place_id}/now"): Rule(R),
    ("GET", "/api/v1/dashboard/places/{place_id}/capacity"): Rule(R),
    ("GET", "/api/v1/dashboard/prices"): Rule(R),
    # backfill progress is an admin's; this app runs without the hub's poller, which 409 says
    ("GET", "/api/v1/dashboard/backfills/events"): Rule(A, 409),
}
"""Every API route of the app with the access it grants; a route missing here fails the matrix."""

STREAMS = {"/api/v1/events"}
"""Routes that answer an endless stream: the first lines are read, then the stream is closed."""

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Callers:
    """The signed-in clients of the matrix, and the real key ids their rules name."""

    admin: httpx.Client
    viewer: httpx.Client
    member: httpx.Client
    outsider: httpx.Client
    anon: httpx.Client
    key_ids: dict[str, str]


def all_routes(api: ApiServer) -> Iterator[tuple[str, str, APIRoute]]:
    """Yield (method, path, route) for every route the running app declares, pages included."""
    for context in iter_route_contexts(api.app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            assert route.path in MOUNTS, f"unexpected mount {route.path}: add it to MOUNTS"
            continue
        assert isinstance(route, APIRoute), f"unexpected route type {route!r}: add it to the matrix"
        for method in sorted(context.methods or ()):
            if method not in {"HEAD", "OPTIONS"}:
                yield method, str(context.path), route


def app_routes(api: ApiServer) -> Iterator[tuple[str, str, APIRoute]]:
    """Yield (method, path, route) for every API route of the app: all but the dashboard's pages."""
    for method, path, route in all_routes(api):
        if (method, path) not in PAGES:
            yield method, path, route


def _seed(api: ApiServer, admin: httpx.Client) -> Callers:
    """Seed the household, what the destructive rules remove, users with shares and spare keys."""
    store = api.store
    seed_household(store)
    store.add_meter(Meter("doomed", "file", phases=1, tz=OSLO, interval_s=60, name="Removed by the admin"))
    store.write_extras([Extra("grid", datetime(2026, 3, 1, tzinfo=UTC), "temperature_c", 21.5)])
    store.add_place(Place("doomed", OSLO, "Removed by the admin", (("doomed", Role.GRID),)))
    store.add_place(Place("shed", OSLO, "Shed", (("solar", Role.CONSUMPTION),)))
    shared = [("meter", m) for m in ("grid", "solar", "doomed")] + [
        ("place", p) for p in ("home", "shed", "doomed")
    ]
    viewer = api.user("vera", UserRole.VIEWER, shared)
    member = api.user("mark", UserRole.MEMBER, shared)
    outsider = api.user("otto", UserRole.MEMBER)
    for name in ("spare", "doomed"):
        api.user(name, UserRole.VIEWER, [("meter", "solar")])
    key_ids = {
        label: security.issue_api_key(store, label.split("-")[0], label)[0].key_id
        for label in ("vera-spare", "vera-rotate", "vera-revoke", "mark-key")
    }
    for series in ("spot", "doomed"):
        imported = admin.post(f"/api/v1/prices/{series}", content=PRICES_CSV)
        assert imported.status_code == 200, imported.text
    return Callers(admin, viewer, member, outsider, api.client(), key_ids)


def _path(template: str, rule: Rule, callers: Callers, **overrides: str) -> str:
    ids = {**DEFAULT_IDS, **rule.ids, **overrides}
    filled = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)
    for label, key_id in callers.key_ids.items():
        filled = filled.replace(label, key_id)
    return filled


def _stream(client: httpx.Client, method: str, path: str) -> httpx.Response:
    """Open a stream, read its first event (or its whole error answer), close it."""
    with client.stream(method, path) as answer:
        if answer.status_code != 200:
            answer.read()
            return answer
        head: list[str] = []
        for line in answer.iter_lines():
            head.append(line)
            if not line and any(part.startswith("data:") for part in head):
                break
    return httpx.Response(answer.status_code, headers=answer.headers, text="\n".join(head))


def _call(client: httpx.Client, method: str, path: str, rule: Rule, **extra: Any) -> httpx.Response:
    if path.split("?")[0] in STREAMS:
        return _stream(client, method, path)
    if rule.content is not None:
        return client.request(method, path, content=rule.content, headers={"Content-Type": "text/csv"})
    if path == "/api/v1/auth/revoke":
        return client.request(method, path, data=extra.get("data", {"token": "mh_not_a_live_key"}))
    return client.request(method, path, json=extra.get("json", rule.json))


def _expect(answer: httpx.Response, status: int, who: str, method: str, template: str) -> None:
    assert answer.status_code == status, (
        f"{who} {method} {template}: {answer.status_code} {answer.text[:300]}"
    )


def _check_route(callers: Callers, method: str, template: str, rule: Rule) -> None:
    """Ask one route as every kind of caller and check each answer's exact status."""
    path = _path(template, rule, callers)

    def check(answer: httpx.Response, status: int, who: str) -> None:
        _expect(answer, status, who, method, template)

    if rule.access is Access.PUBLIC:
        assert _call(callers.anon, method, path, rule).status_code != 401, (method, template)
        return
    check(_call(callers.anon, method, path, rule), 401, "anonymous")
    if rule.access is Access.ADMIN:
        check(_call(callers.viewer, method, path, rule), 403, "viewer")
        check(_call(callers.member, method, path, rule), 403, "member")
        check(_call(callers.admin, method, path, rule), rule.allowed, "admin")
    elif rule.access is Access.WRITE:
        check(_call(callers.viewer, method, path, rule), 403, "viewer")
        check(_call(callers.outsider, method, path, rule), 404, "member it is not shared with")
        check(_call(callers.member, method, path, rule), rule.allowed, "member")
    elif rule.access is Access.SELF:
        others = _path(template, rule, callers, **OTHERS_IDS)
        body = rule.json if rule.others_json is None else rule.others_json
        check(_call(callers.viewer, method, others, rule, json=body), rule.others, "viewer on another's")
        if rule.others_json is None:  # the viewer's account is someone else's to the outsider
            check(_call(callers.outsider, method, path, rule), rule.others, "member on another's")
        check(_call(callers.viewer, method, path, rule), rule.allowed, "viewer on their own")
    elif rule.access is Access.HOLDER:
        for who, client in (("viewer", callers.viewer), ("member", callers.member)):
            check(_call(client, method, path, rule), rule.allowed, who)
    else:
        assert method not in WRITES, f"{method} {template} writes, so it cannot be open to every reader"
        check(_call(callers.viewer, method, path, rule), rule.allowed, "viewer")
        check(_call(callers.member, method, path, rule), rule.allowed, "member")
        hidden = 404 if "{meter_id}" in template or "{place_id}" in template else rule.allowed
        check(_call(callers.outsider, method, path, rule), hidden, "member it is not shared with")


def test_every_route_of_the_app_has_an_expectation(api: ApiServer) -> None:
    pages = {(method, path) for method, path, _ in all_routes(api)} - {
        (method, path) for method, path, _ in app_routes(api)
    }
    assert sorted(PAGES.keys() - pages) == [], "pages the app no longer has"
    assert EXPECTED.keys().isdisjoint(PAGES.keys())
    declared = {(method, path) for method, path, _ in app_routes(api)}
    assert sorted(declared - EXPECTED.keys()) == [], "routes without an expectation: add them to EXPECTED"
    assert sorted(EXPECTED.keys() - declared) == [], "expectations for routes the app no longer has"
    public = {key for key, rule in EXPECTED.items() if rule.access is Access.PUBLIC}
    assert public == {("GET", "/healthz"), ("POST", "/api/v1/auth/token")}


def _requires_admin_first(endpoint: Callable[..., Any]) -> bool:
    """Tell whether a handler calls ``require_admin()`` unconditionally, as a statement of its body."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(endpoint)))
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
    for statement in function.body:
        if (
            isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Call)
            and isinstance(statement.value.func, ast.Attribute)
            and statement.value.func.attr == "require_admin"
        ):
            return True
    return False


def test_admin_only_routes_are_exactly_those_whose_handlers_require_an_admin(api: ApiServer) -> None:
    in_code = {(m, p) for m, p, route in app_routes(api) if _requires_admin_first(route.endpoint)}
    expected = {key for key, rule in EXPECTED.items() if rule.access is Access.ADMIN}
    assert sorted(expected - in_code) == [], "admin-only routes whose handler does not call require_admin()"
    assert sorted(in_code - expected) == [], "handlers that require an admin but are not ADMIN in EXPECTED"


def test_the_authorization_matrix(api: ApiServer, admin: httpx.Client) -> None:
    callers = _seed(api, admin)
    checked = 0
    for method, template, _ in app_routes(api):
        rule = EXPECTED.get((method, template))
        assert rule is not None, f"{method} {template} has no expectation in EXPECTED"
        _check_route(callers, method, template, rule)
        checked += 1
    assert checked == len(EXPECTED)


@pytest.mark.parametrize("role", [UserRole.VIEWER, UserRole.MEMBER])
def test_shares_do_not_let_a_non_admin_detach_a_meter(api: ApiServer, role: UserRole) -> None:
    seed_household(api.store)
    client = api.user("someone", role, [("place", "home"), ("meter", "grid"), ("meter", "solar")])
    answer = client.delete("/api/v1/places/home/meters/solar")
    assert answer.status_code == 403, answer.text
    assert ("solar", Role.SOLAR) in api.store.get_place("home").meters


def test_only_admins_reach_other_users_keys_through_the_query_or_the_body(api: ApiServer) -> None:
    seed_household(api.store)
    for role in (UserRole.VIEWER, UserRole.MEMBER):
        client = api.user(f"a-{role.value}", role, [("meter", "grid")])
        assert client.get("/api/v1/keys", params={"user": "admin"}).status_code == 403
        assert client.post("/api/v1/keys", json={"user": "admin"}).status_code == 403
        own = client.get("/api/v1/keys", params={"user": f"a-{role.value}"})
        assert own.status_code == 200 and {key["user"] for key in own.json()} == {f"a-{role.value}"}
    assert {key["user"] for key in api.client(api.admin_key).get("/api/v1/keys").json()} == {
        "admin",
        "a-viewer",
        "a-member",
    }


def test_pages_send_a_browser_without_a_session_to_sign_in(api: ApiServer, admin: httpx.Client) -> None:
    seed_household(api.store)
    anon = api.client()
    keyed = [("no credentials", anon), ("an API key", admin)]
    for (method, template), expected in PAGES.items():
        path = template.replace("{meter_id}", "grid")
        for who, client in keyed:
            answer = client.request(method, path, follow_redirects=False)
            if expected == SIGN_IN:
                assert answer.status_code == 303, (who, method, path, answer.status_code)
                assert answer.headers["location"] == f"/login?next={quote(path, safe='')}", (who, path)
            else:
                assert answer.status_code == expected, (who, method, path, answer.status_code)
    with_query = anon.get("/meters/grid", params={"range": "week"}, follow_redirects=False)
    assert with_query.headers["location"] == "/login?next=%2Fmeters%2Fgrid%3Frange%3Dweek"
    assert anon.post("/logout", follow_redirects=False).headers["location"] == "/login"
    for mount, sample in MOUNTS.items():
        answer = anon.get(sample)
        assert answer.status_code == 200, (mount, sample, answer.status_code)
        assert answer.headers["content-type"].startswith("text/css"), sample
