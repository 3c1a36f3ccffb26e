"""Follow one Intellimeter metering point by its stable id, whatever it is called today.

Reading rows name a point only by ``MeterParam``, its name, and ``POST /point`` renames it;
``/point`` gives the ``id`` the vendor keeps across renames. A meter's options name the point
(``point``) and, once discovered, its id (``point_id``). Without ``point_id`` the id is learned
at the first call, while the name still finds the point. What was learned (the id and the name
the point had last) is kept in the store beside the vendor's session tokens, so a restart
follows a point renamed in the meantime.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from meterhub.errors import ConfigError, PayloadError
from meterhub.model import Meter
from meterhub.vendors.base import TokenCache

from . import mapping

__all__ = ["PointLookup", "PointRef", "PointTracker"]

log = logging.getLogger(__name__)

PointLookup = Callable[[int | None, str | None], Awaitable[mapping.Document | None]]
"""Ask ``/point`` by id (preferred) or name; None when the vendor has no such point."""


@dataclass(frozen=True, slots=True)
class PointRef:
    """A metering point: its stable id and the name reading rows carry now."""

    id: int
    name: str

    def text(self) -> str:
        """Return the point for people: its name and its id."""
        return f"metering point {self.name!r} (id {self.id})"


def _point_id_option(meter: Meter) -> int | None:
    text = meter.options.get("point_id")
    if text is None:
        return None
    if not text.isdigit():
        raise ConfigError(f"meter {meter.id!r} option point_id={text!r} is not a whole number")
    return int(text)


class PointTracker:
    """The metering point of one meter, found by id when its name no longer finds it."""

    def __init__(self, meter: Meter, tokens: TokenCache) -> None:
        self._meter = meter
        self._tokens = tokens
        self._name = meter.options.get("point") or None
        self._id = _point_id_option(meter)
        if self._name is None and self._id is None:
            raise ConfigError(
                f"meter {meter.id!r} (intellimeter) needs the option 'point' (the metering point's "
                "name) or 'point_id' (its id)"
            )
        self._token_key = f"point|{meter.id}|{self._id or ''}|{self._name or ''}"
        self._ref: PointRef | None = None

    async def current(self, lookup: PointLookup) -> PointRef:
        """Return the point as last seen; learn its id (one ``/point`` call) when none is known."""
        if self._ref is not None:
            return self._ref
        ref = await self._remembered()
        if ref is None:
            if self._id is not None and self._name is not None:
                ref = PointRef(self._id, self._name)
            else:
                ref = await self._learn(lookup)
                await self._remember(ref)
        self._ref = ref
        return ref

    async def follow(self, ref: PointRef, lookup: PointLookup) -> PointRef:
        """Return the point with the name it has now; raise PayloadError when it is gone."""
        info = await lookup(ref.id, None)
        if info is None:
            raise PayloadError(
                f"Intellimeter no longer has {ref.text()} of meter {self._meter.id!r}: it was removed "
                "from the account; nothing can be collected for it"
            )
        point_id, name = mapping.point_identity(info)
        now = PointRef(point_id, name)
        if now != ref:
            log.info(
                "Intellimeter %s of meter %s is now called %r; following it by its id",
                ref.text(),
                self._meter.id,
                name,
            )
            await self._remember(now)
        self._ref = now
        return now

    async def _learn(self, lookup: PointLookup) -> PointRef:
        info = await lookup(self._id, self._name)
        if info is None:
            if self._id is not None:
                raise PayloadError(f"Intellimeter has no metering point with id {self._id}")
            raise PayloadError(
                f"Intellimeter has no metering point named {self._name!r} (renamed or removed?); "
                f"give meter {self._meter.id!r} the point's id as the option point_id "
                "(meterhub meters discover lists every point with its id)"
            )
        point_id, name = mapping.point_identity(info)
        return PointRef(point_id, name)

    async def _remembered(self) -> PointRef | None:
        text = await self._tokens.get(self._token_key, margin_s=0.0)
        if text is None:
            return None
        try:
            record = json.loads(text)
            ref = PointRef(int(record["id"]), str(record["name"]))
        except (ValueError, TypeError, KeyError):
            return None  # an unreadable record is learned again
        if self._id is not None and ref.id != self._id:
            return None
        return ref

    async def _remember(self, ref: PointRef) -> None:
        await self._tokens.put(self._token_key, json.dumps({"id": ref.id, "name": ref.name}), None)
