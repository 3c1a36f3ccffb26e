"""A refresh token is used once: two requests presenting it at once never fork the session.

Each trial signs in, then two threads post the same refresh token on a barrier over real HTTP,
on a SQLite file and on PostgreSQL. At most one gets a new pair; the other is a reuse, which ends
the session, so no token of it works afterwards, the winner's new ones included. Work is bounded
by count (20 trials); nothing is timed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

from tests.api.backends import hub_on
from tests.api.conftest import ApiServer

__all__ = ["hub_on"]

TRIALS = 20


def _refresh(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/api/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": token})


def _works(api: ApiServer, access_token: str) -> bool:
    answer = api.client(access_token, how="bearer").get("/api/v1/session")
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200


def _race(api: ApiServer, refresh_token: str) -> list[httpx.Response]:
    clients = [api.client(), api.client()]
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def post(client: httpx.Client) -> None:
        barrier.wait(timeout=60)
        answers.append(_refresh(client, refresh_token))

    threads = [threading.Thread(target=post, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(answers) == 2, "a refresh request never answered"
    return answers


def test_two_concurrent_refreshes_never_both_win_and_end_the_session(
    hub_on: Callable[..., ApiServer],
) -> None:
    api = hub_on(api_rate_per_s=0)
    for trial in range(TRIALS):
        tokens = api.login()
        answers = _race(api, tokens["refresh_token"])
        won: list[dict[str, Any]] = [a.json() for a in answers if a.status_code == 200]
        assert len(won) <= 1, f"trial {trial}: both refreshes succeeded"
        for answer in answers:
            if answer.status_code != 200:
                assert answer.status_code == 400, answer.text
                assert answer.json()["error"] == "invalid_grant"
        # One of the two was a reuse, so the session is over: nothing of it works any more.
        assert not _works(api, tokens["access_token"]), f"trial {trial}: the session survived"
        for pair in won:
            assert not _works(api, pair["access_token"]), f"trial {trial}: the winner's access works"
            assert _refresh(api.client(), pair["refresh_token"]).status_code == 400


def test_reusing_any_earlier_refresh_token_ends_the_session(hub_on: Callable[..., ApiServer]) -> None:
    api = hub_on(api_rate_per_s=0)
    client = api.client()
    first = api.login()
    second = _refresh(client, first["refresh_token"]).json()
    third = _refresh(client, second["refresh_token"]).json()
    assert _works(api, third["access_token"])

    reused = _refresh(client, first["refresh_token"])
    assert reused.status_code == 400
    assert "used before" in reused.json()["detail"]
    assert not _works(api, third["access_token"])
    assert _refresh(client, third["refresh_token"]).status_code == 400


def test_rotation_keeps_working_without_reuse(hub_on: Callable[..., ApiServer]) -> None:
    api = hub_on(api_rate_per_s=0)
    client = api.client()
    tokens = api.login()
    for _ in range(5):
        answer = _refresh(client, tokens["refresh_token"])
        assert answer.status_code == 200, answer.text
        tokens = answer.json()
        assert _works(api, tokens["access_token"])
