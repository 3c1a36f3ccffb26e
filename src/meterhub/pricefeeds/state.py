"""What each price feed last did, kept in the store so any process can show it.

The worker fetching a feed writes its :class:`FeedState` after every look (token store, scope
``pricefeeds``, key ``direction:series``): the last attempt and success, what the success stored,
the last error in one line (the token never in it), failures in a row, and the next try. An
index under the key ``index`` lists the feeds, so ``meterhub status``, the API, ``/metrics`` and
the dashboard find them without the hub's ``meterhub.toml``. A worker taking a feed over reads
its state first and carries it on. A hub started with ``[[prices]]`` tables forgets the state of
feeds it no longer declares (replicas share one ``meterhub.toml``). All times are aware UTC.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from meterhub.errors import StoreError
from meterhub.store.base import Store

__all__ = [
    "INDEX_KEY",
    "MAX_ERROR_CHARS",
    "STATE_SCOPE",
    "FeedState",
    "StoredSpan",
    "feed_key",
    "forget_other_feeds",
    "load_state",
    "load_states",
    "one_line",
    "save_state",
]

STATE_SCOPE = "pricefeeds"
"""The token store's scope of the feeds' states."""
INDEX_KEY = "index"
"""The key listing every feed's key (``direction:series``)."""
MAX_ERROR_CHARS = 300
"""An error is kept to one line of at most this many characters."""
_INDEX_TRIES = 20


@dataclass(frozen=True, slots=True)
class StoredSpan:
    """What one successful fetch stored: the days asked for, slots given, new or changed, equal."""

    days: str
    slots: int
    stored: int
    unchanged: int
    first_start: datetime
    last_end: datetime


@dataclass(frozen=True, slots=True)
class FeedState:
    """One feed's last doings, as its fetching worker wrote them."""

    series: str
    direction: str
    source: str
    zone: str
    """The bidding zone's name (``NO1``, ``DE-LU``)."""
    tz: str
    """The zone's local time zone: days are its days."""
    holder: str | None = None
    """The worker fetching it now; None after that worker stopped cleanly."""
    fetches: int = 0
    """Requests made by the workers that held it (successful or not)."""
    failures: int = 0
    """Failures in a row (0 after a success, or an answer that the day is not out yet)."""
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_stored: StoredSpan | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    note: str | None = None
    """The outcome of the last look when it was no error: ``2026-10-25 not published yet``."""
    next_try_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def key(self) -> str:
        """Return the store key of this feed."""
        return feed_key(self.series, self.direction)

    def to_json(self) -> str:
        """Return the state as JSON text."""
        return orjson.dumps(dataclasses.asdict(self), option=orjson.OPT_UTC_Z).decode()

    @classmethod
    def from_json(cls, text: str) -> FeedState:
        """Read a state written by :meth:`to_json`; raise StoreError when it is not one."""
        try:
            data: dict[str, Any] = orjson.loads(text)
            span = data.get("last_stored")
            data["last_stored"] = None if span is None else _span(span)
            for name in ("last_attempt_at", "last_success_at", "last_error_at", "next_try_at", "updated_at"):
                data[name] = _instant(data.get(name))
            return cls(**data)
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(f"a stored price feed state cannot be read ({exc})") from None


def _span(data: dict[str, Any]) -> StoredSpan:
    first, last = _instant(data["first_start"]), _instant(data["last_end"])
    if first is None or last is None:
        raise ValueError("a stored span without its start or end")
    return StoredSpan(
        str(data["days"]), int(data["slots"]), int(data["stored"]), int(data["unchanged"]), first, last
    )


def _instant(text: object) -> datetime | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a time")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment


def feed_key(series: str, direction: str) -> str:
    """Return the key of the feed filling ``series`` in ``direction`` (import or export)."""
    return f"{direction}:{series}"


def one_line(text: str, secrets: Sequence[str | None] = ()) -> str:
    """Return an error message on one line, shortened, with ``secrets`` and URL passwords masked."""
    from meterhub.redact import redact_text

    line = " ".join(redact_text(text, secrets).split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


def _index(store: Store) -> tuple[str | None, list[str]]:
    found = store.token_get(STATE_SCOPE, INDEX_KEY)
    if found is None:
        return None, []
    try:
        keys = orjson.loads(found[0])
    except orjson.JSONDecodeError:
        return found[0], []
    return found[0], [str(k) for k in keys] if isinstance(keys, list) else []


def _set_index(store: Store, change: Any) -> None:
    """Apply ``change(keys) -> keys`` to the index atomically (compare and swap, retried)."""
    for _ in range(_INDEX_TRIES):
        raw, keys = _index(store)
        wanted = change(list(keys))
        if wanted == keys:
            return
        text = orjson.dumps(sorted(set(wanted))).decode()
        if raw is None:
            store.token_set(STATE_SCOPE, INDEX_KEY, text, None)
            if sorted(set(wanted)) == _index(store)[1]:
                return
        elif store.token_swap(STATE_SCOPE, INDEX_KEY, raw, text, None):
            return
    raise StoreError("the index of price feed states kept changing; try again")


def save_state(store: Store, state: FeedState) -> None:
    """Store a feed's state and list it in the index."""
    store.token_set(STATE_SCOPE, state.key, state.to_json(), None)
    _set_index(store, lambda keys: keys if state.key in keys else [*keys, state.key])


def load_state(store: Store, series: str, direction: str) -> FeedState | None:
    """Return a feed's stored state, or None (also for one that cannot be read)."""
    found = store.token_get(STATE_SCOPE, feed_key(series, direction))
    if found is None:
        return None
    try:
        return FeedState.from_json(found[0])
    except StoreError:
        return None


def load_states(store: Store) -> list[FeedState]:
    """Return the state of every feed in the index, by series then direction."""
    states: list[FeedState] = []
    for key in _index(store)[1]:
        direction, _, series = key.partition(":")
        state = load_state(store, series, direction)
        if state is not None:
            states.append(state)
    return sorted(states, key=lambda s: (s.series, s.direction))


def forget_other_feeds(store: Store, keep: Sequence[str]) -> list[str]:
    """Forget the states of feeds whose keys are not in ``keep``; return the keys forgotten."""
    gone = [key for key in _index(store)[1] if key not in keep]
    if not gone:
        return []
    _set_index(store, lambda keys: [k for k in keys if k not in gone])
    for key in gone:
        store.token_delete(STATE_SCOPE, key)
    return gone
