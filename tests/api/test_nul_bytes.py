"""A NUL character anywhere in a request is the client's mistake: 422 on every backend, never 503.

The same requests go to the real app on a SQLite file and on PostgreSQL (which cannot store or
even compare a NUL): path parameters, query parameters and JSON bodies. No answer names the
backend, and the store itself refuses NUL in what it is given, whoever calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from meterhub.errors import InputError
from meterhub.model import Meter, Place, PricePoint, UserRole
from meterhub.store.base import Store
from tests.api.backends import hub_on
from tests.api.conftest import ApiServer
from tests.backends import Backend

__all__ = ["hub_on"]

NUL = "\u0000"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
BACKEND_WORDS = ("postgres", "sqlite", "psycopg", "database", "NUL (0x00) bytes")

PATH_AND_QUERY = [
    "/api/v1/meters/ams%00",
    "/api/v1/meters/ams%00/latest",
    "/api/v1/meters/m1/intervals?source=%00&start=2026-01-01&end=2026-01-02",
    "/api/v1/meters/m1/readings?start=2026-01-01&end=2026-01-02&phase=%00",
    "/api/v1/meters?source=%00",
    "/api/v1/places/p%00",
    "/api/v1/places/p%00/energy?start=2026-01-01&end=2026-01-02",
    "/api/v1/prices/a%00",
    "/api/v1/users/a%00",
    "/api/v1/keys/ab%00",
]

BODIES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/v1/places", {"id": "p2", "tz": "UTC", "name": f"a{NUL}b"}),
    ("POST", "/api/v1/places", {"id": f"p{NUL}", "tz": "UTC"}),
    ("POST", "/api/v1/places", {"id": "p3", "tz": f"UTC{NUL}"}),
    ("PATCH", "/api/v1/places/p1", {"name": f"x{NUL}"}),
    ("POST", "/api/v1/keys", {"name": f"k{NUL}"}),
    ("POST", "/api/v1/keys", {"name": "k", "user": f"admin{NUL}"}),
    ("POST", "/api/v1/users", {"name": f"b{NUL}ob", "role": "viewer", "password": "password-1"}),
    ("POST", "/api/v1/meters", {"id": f"m{NUL}", "vendor": "file"}),
    ("POST", "/api/v1/meters", {"id": "m3", "vendor": f"file{NUL}"}),
    ("PUT", "/api/v1/places/p1/tariff", {"currency": f"E{NUL}", "import_series": f"s{NUL}"}),
]


def _seeded(api: ApiServer) -> httpx.Client:
    api.store.add_meter(Meter("m1", "file"))
    api.store.add_place(Place("p1", "UTC", "Home"))
    return api.client(api.admin_key)


def _assert_input_problem(answer: httpx.Response) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    detail = answer.json()["detail"]
    assert detail
    for word in BACKEND_WORDS:
        assert word not in detail, detail


@pytest.mark.parametrize("target", PATH_AND_QUERY)
def test_nul_in_a_path_or_query_parameter_is_422(hub_on: Callable[..., ApiServer], target: str) -> None:
    admin = _seeded(hub_on(api_rate_per_s=0))
    answer = admin.get(target)
    _assert_input_problem(answer)


def test_nul_in_path_and_query_names_the_parameter(hub_on: Callable[..., ApiServer]) -> None:
    admin = _seeded(hub_on(api_rate_per_s=0))
    body = admin.get("/api/v1/meters/m1/intervals?source=%00&start=2026-01-01&end=2026-01-02").json()
    assert {"in": "query", "parameter": "source"}.items() <= body["errors"][0].items()
    body = admin.get("/api/v1/meters/ams%00").json()
    assert body["errors"][0]["in"] == "path" and "NUL" in body["errors"][0]["message"]


@pytest.mark.parametrize(("method", "target", "body"), BODIES)
def test_nul_in_a_json_body_is_422_and_stores_nothing(
    hub_on: Callable[..., ApiServer], method: str, target: str, body: dict[str, Any]
) -> None:
    api = hub_on(api_rate_per_s=0)
    admin = _seeded(api)
    _assert_input_problem(admin.request(method, target, json=body))
    assert [m.id for m in api.store.list_meters()] == ["m1"]
    assert [(p.id, p.name, dict(p.tariff)) for p in api.store.list_places()] == [("p1", "Home", {})]
    assert [u.name for u in api.store.list_users()] == ["admin"]
    assert len(api.store.list_api_keys()) == 1


def test_nul_in_a_sign_in_is_a_wrong_sign_in(hub_on: Callable[..., ApiServer]) -> None:
    api = hub_on(api_rate_per_s=0)
    answer = api.client().post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": f"admin{NUL}", "password": "x"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_grant"


STORE_CALLS: list[tuple[str, Callable[[Store], object]]] = [
    ("get_meter", lambda s: s.get_meter(f"m{NUL}")),
    ("add_meter name", lambda s: s.add_meter(Meter("m2", "file", name=f"a{NUL}"))),
    ("add_meter options", lambda s: s.add_meter(Meter("m3", "iammeter", options={"sn": f"a{NUL}"}))),
    ("get_place", lambda s: s.get_place(f"p{NUL}")),
    ("add_place", lambda s: s.add_place(Place("p2", "UTC", f"a{NUL}"))),
    ("add_user", lambda s: s.add_user(f"u{NUL}", UserRole.VIEWER, "hash")),
    ("share", lambda s: s.share("admin", "meter", f"m{NUL}")),
    ("token_get", lambda s: s.token_get("refresh", f"k{NUL}")),
    ("quota_used", lambda s: s.quota_used(f"q{NUL}", 60, T0)),
]

@pytest.mark.parametrize(("name", "call"), STORE_CALLS, ids=[name for name, _ in STORE_CALLS])
def test_the_postgres_store_refuses_nul_as_input(
    postgres_store: Store, name: str, call: Callable[[Store], object]
) -> None:
    with pytest.raises(InputError, match="NUL"):
        call(postgres_store)


def test_prices_with_nul_are_refused_on_every_backend(backend_store: Store) -> None:
    slot = PricePoint(T0, T0 + timedelta(hours=1), 0.1, f"EU{NUL}")
    with pytest.raises(InputError):
        backend_store.write_prices([slot])
    assert backend_store.price_series() == []


def test_a_vendor_error_with_nul_is_recorded_without_it(backend_store: Store) -> None:
    health = backend_store.record_health("m1", False, T0, f"bad{NUL}answer")
    assert health.last_error == "badanswer"


@pytest.fixture
def postgres_store(tmp_path: Path) -> Iterator[Store]:
    """Yield a migrated store on a fresh PostgreSQL schema, with meter m1."""
    place = Backend("postgres", tmp_path)
    try:
        store = place.open()
        store.add_meter(Meter("m1", "file"))
        store.add_user("admin", UserRole.ADMIN, "hash")
        yield store
    finally:
        place.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Yield a migrated store with meter m1 on each backend."""
    place = Backend(request.param, tmp_path)
    try:
        store = place.open()
        store.add_meter(Meter("m1", "file"))
        yield store
    finally:
        place.close()
