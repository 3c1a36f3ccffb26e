"""The Store contract for users, API keys and shares, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from meterhub.errors import ConflictError, InputError, NotFoundError, UnknownMeterError, UnknownPlaceError
from meterhub.model import ApiKey, Meter, Place, UserRole
from meterhub.store.base import Store

if TYPE_CHECKING:
    from tests.backends import Backend

T0 = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)


def _key(key_id: str, user: str, name: str = "", at: datetime = T0) -> ApiKey:
    return ApiKey(key_id, user, name, f"mh_{key_id}", at)


def test_users_round_trip_and_conflict(store: Store) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    store.add_user("zoe", UserRole.VIEWER, "hash-z")
    store.add_user("ann", UserRole.ADMIN, "hash-a")
    with pytest.raises(ConflictError, match="'ann'"):
        store.add_user("ann", UserRole.MEMBER, "other")
    ann = store.get_user("ann")
    assert (ann.name, ann.role) == ("ann", UserRole.ADMIN)
    assert before <= ann.created_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert ann.created_at.tzinfo is not None
    assert [u.name for u in store.list_users()] == ["ann", "zoe"]
    assert store.user_password_hash("ann") == "hash-a"
    assert store.user_password_hash("nobody") is None
    with pytest.raises(NotFoundError, match="'nobody'"):
        store.get_user("nobody")


def test_password_and_role_changes(store: Store) -> None:
    store.add_user("ann", UserRole.MEMBER, "old")
    store.set_user_password("ann", "new")
    store.set_user_role("ann", UserRole.VIEWER)
    assert store.user_password_hash("ann") == "new"
    assert store.get_user("ann").role is UserRole.VIEWER
    with pytest.raises(NotFoundError):
        store.set_user_password("ghost", "x")
    with pytest.raises(NotFoundError):
        store.set_user_role("ghost", UserRole.ADMIN)


def test_api_keys_round_trip_revoke_and_touch(store: Store) -> None:
    store.add_user("ann", UserRole.ADMIN, "h")
    store.add_user("bob", UserRole.MEMBER, "h")
    store.add_api_key(_key("k1", "ann", "laptop"), "sha-1")
    store.add_api_key(_key("k2", "bob", at=T0 + timedelta(minutes=1)), "sha-2")
    with pytest.raises(ConflictError):
        store.add_api_key(_key("k1", "bob"), "sha-3")
    with pytest.raises(NotFoundError):
        store.add_api_key(_key("k9", "ghost"), "sha-9")
    found = store.api_key_by_id("k1")
    assert found == (_key("k1", "ann", "laptop"), "sha-1")
    assert store.api_key_by_id("nope") is None
    assert [k.key_id for k in store.list_api_keys()] == ["k1", "k2"]
    assert [k.key_id for k in store.list_api_keys("bob")] == ["k2"]
    store.touch_api_key("k2", T0 + timedelta(hours=1))
    store.revoke_api_key("k2")
    (k2,) = store.list_api_keys("bob")
    assert (k2.revoked, k2.last_used_at) == (True, T0 + timedelta(hours=1))
    with pytest.raises(NotFoundError):
        store.revoke_api_key("nope")


def test_shares_follow_users_meters_and_places(store: Store) -> None:
    store.add_user("bob", UserRole.VIEWER, "h")
    store.add_meter(Meter("grid", "file"))
    store.add_meter(Meter("pv", "file"))
    store.add_place(Place("home", "UTC"))
    store.share("bob", "meter", "pv")
    store.share("bob", "meter", "grid")
    store.share("bob", "meter", "grid")  # sharing twice is harmless
    store.share("bob", "place", "home")
    assert store.shares_of("bob") == [("meter", "grid"), ("meter", "pv"), ("place", "home")]
    with pytest.raises(UnknownMeterError):
        store.share("bob", "meter", "ghost")
    with pytest.raises(UnknownPlaceError):
        store.share("bob", "place", "nowhere")
    with pytest.raises(InputError, match="cannot share"):
        store.share("bob", "user", "ann")
    with pytest.raises(NotFoundError):
        store.share("ghost", "meter", "pv")
    store.unshare("bob", "meter", "pv")
    with pytest.raises(NotFoundError, match="not shared"):
        store.unshare("bob", "meter", "pv")
    store.remove_meter("grid")
    store.add_meter(Meter("grid", "file"))  # a new meter under an old id is not shared
    store.remove_place("home")
    assert store.shares_of("bob") == []
    assert store.shares_of("nobody") == []


def test_remove_user_takes_keys_and_shares(store: Store) -> None:
    store.add_user("bob", UserRole.MEMBER, "h")
    store.add_meter(Meter("pv", "file"))
    store.share("bob", "meter", "pv")
    store.add_api_key(_key("k1", "bob"), "sha")
    store.remove_user("bob")
    assert store.list_users() == []
    assert store.api_key_by_id("k1") is None
    store.add_user("bob", UserRole.VIEWER, "h2")  # the name is free again, with nothing attached
    assert store.shares_of("bob") == []
    with pytest.raises(NotFoundError):
        store.remove_user("ghost")


def test_accounts_survive_reopening(backend: Backend, store: Store) -> None:
    store.add_user("ann", UserRole.ADMIN, "h")
    store.add_api_key(_key("k1", "ann"), "sha")
    reopened = backend.open()
    assert reopened.get_user("ann").role is UserRole.ADMIN
    assert reopened.api_key_by_id("k1") is not None
