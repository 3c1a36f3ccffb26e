"""``meterhub users`` and ``meterhub keys`` against a real SQLite file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from meterhub.api import security
from meterhub.cli import main
from meterhub.model import Meter, Place
from meterhub.store import open_store
from tests.cli.conftest import Run


def _key_line(output: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith("mh_")]
    return line


def test_users_add_from_env_or_prompt_list_role_passwd_remove(
    run: Run, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_PW", "admin-password-1")
    assert (
        "added admin root"
        in run("users", "add", "root", "--role", "admin", "--password-env", "ADMIN_PW").stdout
    )
    prompted = CliRunner().invoke(
        main,
        ["--database-url", db_url, "users", "add", "bob", "--role", "viewer"],
        input="bob-password\nbob-password\n",
    )
    assert prompted.exit_code == 0, prompted.output
    assert "bob-password" not in prompted.stdout
    listed = json.loads(run("users", "list", "--format", "json").stdout)
    assert [(u["name"], u["role"]) for u in listed] == [("bob", "viewer"), ("root", "admin")]
    assert "now member" in run("users", "role", "bob", "member").stdout
    monkeypatch.setenv("NEW_PW", "another-password")
    run("users", "passwd", "bob", "--password-env", "NEW_PW")
    store = open_store(db_url)
    try:
        assert security.verify_password(store.user_password_hash("bob"), "another-password")
        assert store.get_user("bob").role.value == "member"
    finally:
        store.close()
    assert "removed bob" in run("users", "remove", "bob").stdout
    assert json.loads(run("users", "list", "--format", "json").stdout)[0]["name"] == "root"


def test_users_errors_are_one_line(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW", "admin-password-1")
    monkeypatch.setenv("SHORT", "short")
    run("users", "add", "root", "--role", "admin", "--password-env", "PW")
    for args, message in (
        (("users", "add", "root", "--role", "viewer", "--password-env", "PW"), "exists already"),
        (("users", "add", "bad name", "--role", "viewer", "--password-env", "PW"), "user name"),
        (("users", "add", "eve", "--role", "viewer", "--password-env", "SHORT"), "at least 8"),
        (("users", "add", "eve", "--role", "viewer", "--password-env", "UNSET_VARIABLE"), "not set"),
        (("users", "remove", "root"), "last admin"),
        (("users", "role", "root", "viewer"), "last admin"),
        (("users", "remove", "ghost"), "unknown user"),
        (("users", "share", "root", "meter", "ghost"), "unknown meter"),
    ):
        result = run(*args, ok=False)
        assert result.exit_code == 1, args
        assert result.stderr.startswith("error: ") and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_users_share_and_unshare(run: Run, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW", "viewer-password")
    run("users", "add", "bob", "--role", "viewer", "--password-env", "PW")
    store = open_store(db_url)
    try:
        store.add_meter(Meter("pv", "file"))
        store.add_place(Place("home", "UTC"))
    finally:
        store.close()
    run("users", "share", "bob", "meter", "pv")
    assert "stopped sharing" not in run("users", "share", "bob", "place", "home").stdout
    assert json.loads(run("users", "list", "--format", "json").stdout)[0]["shares"] == "meter:pv place:home"
    run("users", "unshare", "bob", "meter", "pv")
    assert json.loads(run("users", "list", "--format", "json").stdout)[0]["shares"] == "place:home"
    assert "not shared" in run("users", "unshare", "bob", "meter", "pv", ok=False).stderr


def test_keys_create_list_rotate_revoke(run: Run, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW", "admin-password-1")
    run("users", "add", "root", "--role", "admin", "--password-env", "PW")
    created = run("keys", "create", "root", "--name", "grafana").stdout
    assert "shown only now" in created
    key = _key_line(created)
    key_id, secret = security.split_api_key(key) or ("", "")
    listed = run("keys", "list", "--format", "json").stdout
    assert json.loads(listed)[0]["prefix"] == f"mh_{key_id}" and json.loads(listed)[0]["name"] == "grafana"
    assert secret not in listed and secret not in run("keys", "list").stdout
    rotated = run("keys", "rotate", key_id).stdout
    new_key = _key_line(rotated)
    assert new_key != key and f"revoked {key_id}" in rotated
    store = open_store(db_url)
    try:
        old = store.api_key_by_id(key_id)
        assert old is not None and old[0].revoked
        new_id, new_secret = security.split_api_key(new_key) or ("", "")
        found = store.api_key_by_id(new_id)
        assert found is not None and security.verify_api_key(new_secret, found[1])
        assert found[1] != new_secret
    finally:
        store.close()
    assert f"revoked {new_id}" in run("keys", "revoke", new_id).stdout
    assert all(k["revoked"] for k in json.loads(run("keys", "list", "--format", "json").stdout))
    assert "unknown API key" in run("keys", "revoke", "0123456789ab", ok=False).stderr
    assert "unknown user" in run("keys", "create", "ghost", ok=False).stderr
