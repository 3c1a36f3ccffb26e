"""Use-once tokens: of two callers swapping the same token at once, exactly one succeeds.

Each trial starts two threads on a barrier, each with its own store on the same database (as two
API replicas would), and then again on one shared store. Work is bounded by count.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from meterhub.store.base import Store
from tests.backends import Backend

TRIALS = 20
EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)


def _race(first: Store, second: Store, key: str) -> list[bool]:
    """Swap the same fresh token from two threads at once; return each one's answer."""
    first.token_set("refresh", key, "fresh", EXPIRES)
    barrier = threading.Barrier(2)
    answers: list[bool] = []

    def swap(store: Store, who: str) -> None:
        barrier.wait(timeout=60)
        answers.append(store.token_swap("refresh", key, "fresh", f"used by {who}", EXPIRES))

    threads = [threading.Thread(target=swap, args=(s, w)) for s, w in ((first, "a"), (second, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


@pytest.mark.parametrize("shared", [False, True], ids=["two-stores", "one-store"])
def test_exactly_one_of_two_concurrent_swaps_wins(backend: Backend, shared: bool) -> None:
    first = backend.open()
    second = first if shared else backend.open(migrate=False)
    for trial in range(TRIALS):
        answers = _race(first, second, f"k{trial}")
        assert sorted(answers) == [False, True], f"trial {trial}: {answers}"
        found = first.token_get("refresh", f"k{trial}")
        assert found is not None and found[0] in ("used by a", "used by b")


def test_swap_of_a_changed_or_missing_token_does_nothing(store: Store) -> None:
    store.token_set("session", "s1", "v1", EXPIRES)
    assert not store.token_swap("session", "s1", "v0", "v2", EXPIRES)
    assert not store.token_swap("session", "gone", "v1", "v2", EXPIRES)
    assert store.token_get("session", "gone") is None
    later = EXPIRES + timedelta(days=1)
    assert store.token_swap("session", "s1", "v1", "v2", later)
    assert store.token_get("session", "s1") == ("v2", later)


def test_purge_deletes_only_expired_tokens_of_the_scope(store: Store) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    store.token_set("refresh", "old", "x", now - timedelta(seconds=1))
    store.token_set("refresh", "new", "x", now + timedelta(seconds=1))
    store.token_set("refresh", "forever", "x", None)
    store.token_set("vendor", "old", "x", now - timedelta(days=1))
    assert store.token_purge("refresh", now) == 1
    assert store.token_get("refresh", "old") is None
    assert store.token_get("refresh", "new") is not None
    assert store.token_get("refresh", "forever") is not None
    assert store.token_get("vendor", "old") is not None
