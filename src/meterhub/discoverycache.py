"""Discovery answers kept for the vendor's quota window, so asking twice costs one vendor call.

``meterhub meters discover iammeter …`` followed by the same command with ``--add`` (or the
dashboard's "Meters found" page followed by its "Add" button) asks the same question twice.
IAMMETER allows one ``metersdata`` call per 5 minutes per account, so the second would fail for
5 minutes. The first answer is kept in the store's token table (scope ``discovery``), keyed by
the vendor, the connection options (which hold only secret *references*) and the zone asked
with, for as long as the vendor's one-call-per-window rules last (at least a minute, at most an
hour). A kept answer is only what the vendor said: no secret is in it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from meterhub.store.base import Store
from meterhub.vendors.base import Discovered, DiscoveredPlace, QuotaRule

__all__ = ["DISCOVERY_SCOPE", "KeptDiscovery", "discovery_key", "keep_discovery", "keep_s", "kept_discovery"]

DISCOVERY_SCOPE = "discovery"
MIN_KEEP_S = 60
MAX_KEEP_S = 3600


@dataclass(frozen=True, slots=True)
class KeptDiscovery:
    """A discovery answer and when the vendor gave it."""

    found: list[Discovered]
    asked_at: datetime


def keep_s(rules: Sequence[QuotaRule]) -> int:
    """Return how long a discovery answer is kept: the longest one-call window of ``rules``,
    at least a minute and at most an hour."""
    windows = [rule.window_s for rule in rules if rule.limit == 1]
    return max(MIN_KEEP_S, min(MAX_KEEP_S, max(windows, default=MIN_KEEP_S)))


ONE_METER_OPTIONS = frozenset({"sn", "ean", "point", "point_id"})
"""Options naming one meter of an account, which the account's discovery does not use: the same
question with or without them gets the same answer (a device's own id, ``devid``, is not one)."""


def discovery_key(vendor: str, options: Mapping[str, str], tz: str | None) -> str:
    """Return the key a discovery answer is kept under (a digest: options may be long)."""
    options = {key: value for key, value in options.items() if key not in ONE_METER_OPTIONS}
    question = orjson.dumps(
        {"vendor": vendor, "options": dict(options), "tz": tz}, option=orjson.OPT_SORT_KEYS
    )
    return f"{vendor}|{hashlib.sha256(question).hexdigest()}"


def kept_discovery(store: Store, key: str, now: datetime) -> KeptDiscovery | None:
    """Return the answer kept under ``key`` while it is fresh, else None."""
    kept = store.token_get(DISCOVERY_SCOPE, key)
    if kept is None or (kept[1] is not None and kept[1] <= now):
        return None
    try:
        document = orjson.loads(kept[0])
        found = [_discovered(item) for item in document["found"]]
        asked_at = datetime.fromisoformat(document["asked_at"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # written by another version of meterhub: ask the vendor again
    return KeptDiscovery(found, asked_at)


def keep_discovery(
    store: Store, key: str, found: Sequence[Discovered], asked_at: datetime, keep_for_s: int
) -> None:
    """Keep ``found`` under ``key`` for ``keep_for_s`` seconds from ``asked_at``."""
    document = {"asked_at": asked_at.isoformat(), "found": [asdict(item) for item in found]}
    text = orjson.dumps(document, default=_plain).decode()
    store.token_set(DISCOVERY_SCOPE, key, text, asked_at + timedelta(seconds=keep_for_s))


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot keep {type(value).__name__} in a discovery answer")


def _discovered(item: Mapping[str, Any]) -> Discovered:
    place = item.get("place")
    return Discovered(
        suggested_id=str(item["suggested_id"]),
        vendor=str(item["vendor"]),
        phases=int(item["phases"]),
        name=str(item["name"]),
        options={str(k): str(v) for k, v in dict(item["options"]).items()},
        tz=str(item["tz"]),
        place=None if place is None else DiscoveredPlace(**place),
    )
