"""``/api/v1/keys`` over loopback HTTP: a key is shown once, stored hashed, never returned or logged."""

from __future__ import annotations

import logging
import sqlite3

import httpx
import pytest

from meterhub.model import UserRole
from tests.api.conftest import ApiServer

KEYS = "/api/v1/keys"


def test_key_lifecycle_create_list_rotate_revoke(
    api: ApiServer, admin: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    made = admin.post(KEYS, json={"name": "grafana"})
    assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
    created = made.json()
    key, key_id = created["key"], created["key_id"]
    assert key.startswith(f"mh_{key_id}_") and created["prefix"] == f"mh_{key_id}"
    secret = key.split("_", 2)[2]
    assert len(secret) >= 43  # 256 random bits
    mine = api.client(key, how="bearer")
    assert mine.get("/api/v1/session").json()["key_id"] == key_id
    # Listed and shown by prefix only, in every format.
    answers = [admin.get(KEYS, params={"format": fmt}) for fmt in ("json", "xml", "csv", "yaml", "ndjson")]
    answers.append(admin.get(f"{KEYS}/{key_id}"))
    for answer in answers:
        assert answer.status_code == 200 and key_id in answer.text
        assert secret not in answer.text and '"key"' not in answer.text
    listed = {k["key_id"]: k for k in admin.get(KEYS).json()}
    assert listed[key_id]["last_used_at"] is not None and listed[key_id]["revoked"] is False
    # Rotation answers a new key once; the old one stops working at once.
    rotated = admin.post(f"{KEYS}/{key_id}/rotate")
    assert rotated.status_code == 201
    new_key = rotated.json()["key"]
    assert rotated.json()["name"] == "grafana" and rotated.json()["key_id"] != key_id
    assert mine.get("/api/v1/session").status_code == 401
    assert api.client(new_key).get("/api/v1/session").status_code == 200
    assert admin.post(f"{KEYS}/{key_id}/rotate").status_code == 422
    new_id = rotated.json()["key_id"]
    assert admin.delete(f"{KEYS}/{new_id}").status_code == 204
    assert api.client(new_key).get("/api/v1/session").status_code == 401
    assert {k["key_id"]: k["revoked"] for k in admin.get(KEYS).json()}[new_id] is True
    # The secrets were never logged, and the database holds only their hashes.
    for text in (key, new_key):
        assert text not in caplog.text and text.split("_", 2)[2] not in caplog.text
    with sqlite3.connect(api.database_url.removeprefix("sqlite:///")) as conn:
        dump = "\n".join(conn.iterdump())
    assert secret not in dump and new_key.split("_", 2)[2] not in dump


def test_users_manage_their_own_keys_admins_everyones(api: ApiServer, admin: httpx.Client) -> None:
    bob = api.user("bob", UserRole.VIEWER)
    api.user("carol", UserRole.MEMBER)
    carol_key = admin.post(KEYS, json={"user": "carol", "name": "for carol"}).json()
    assert carol_key["user"] == "carol"
    own = bob.post(KEYS, json={"name": "phone"})
    assert own.status_code == 201 and own.json()["user"] == "bob"
    assert {k["user"] for k in bob.get(KEYS).json()} == {"bob"}
    assert {k["user"] for k in admin.get(KEYS).json()} == {"admin", "bob", "carol"}
    assert {k["user"] for k in admin.get(KEYS, params={"user": "carol"}).json()} == {"carol"}
    assert bob.get(KEYS, params={"user": "carol"}).status_code == 403
    assert bob.post(KEYS, json={"user": "carol"}).status_code == 403
    for method, path in (("GET", ""), ("POST", "/rotate"), ("DELETE", "")):
        answer = bob.request(method, f"{KEYS}/{carol_key['key_id']}{path}")
        assert answer.status_code == 404, (method, path)  # another user's key looks like no key
    assert admin.post(KEYS, json={"user": "ghost"}).status_code == 404
    assert admin.post(KEYS, json={"name": "x" * 101}).status_code == 422
    assert admin.get(f"{KEYS}/not-an-id").status_code == 422
    assert admin.delete(f"{KEYS}/0123456789ab").status_code == 404


def test_revoking_a_key_through_the_revocation_endpoint(api: ApiServer, admin: httpx.Client) -> None:
    key = admin.post(KEYS, json={}).json()["key"]
    assert api.client(key).post("/api/v1/auth/revoke", data={"token": key}).status_code == 200
    assert api.client(key).get("/api/v1/session").status_code == 401
