"""The period a dashboard view is asked for: ``range``, ``anchor``, ``start``, ``end`` and ``compare``.

Each view route reads them through ``period_query`` (its own ranges and help texts) and turns
them into periods in the zone of its meter or place once it knows which one it shows.
"""

# Annotations stay objects here: FastAPI reads period_query's parameters from a closure.

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Query

from meterhub.api.routes._params import EndQuery, StartQuery, time_range
from meterhub.web.periods import Period, period_of

__all__ = ["PeriodQuery", "period_query"]


@dataclass(frozen=True)
class PeriodQuery:
    """A view's period as asked: ``kind`` around ``anchor``, or custom between ``start`` and ``end``."""

    kind: str
    anchor: str | None
    start: str | None
    end: str | None
    compare: bool

    def periods(self, tz: str, now: datetime) -> tuple[Period, Period | None]:
        """Return the period asked for and, when comparing, the one before it (as long, for custom)."""
        lo, hi = (
            time_range(self.start, self.end, tz, default_span=timedelta(days=1))
            if self.kind == "custom"
            else (None, None)
        )
        period = period_of(self.kind, self.anchor, tz, now, lo, hi)
        if not self.compare:
            return period, None
        if period.previous is None:
            span = period.end - period.start
            return period, period_of("custom", None, tz, now, period.start - span, period.start)
        return period, period_of(self.kind, period.previous, tz, now)


def period_query(ranges: tuple[str, ...], anchor_help: str, compare_help: str) -> Callable[..., PeriodQuery]:
    """Return a dependency reading a period whose ``range`` is one of ``ranges``."""
    pattern = "^(" + "|".join(ranges) + ")$"

    def asked(
        kind: Annotated[str, Query(alias="range", pattern=pattern, description="The period kind.")] = "day",
        anchor: Annotated[str | None, Query(max_length=32, description=anchor_help)] = None,
        start: StartQuery = None,
        end: EndQuery = None,
        compare: Annotated[bool, Query(description=compare_help)] = False,
    ) -> PeriodQuery:
        return PeriodQuery(kind, anchor, start, end, compare)

    return asked
