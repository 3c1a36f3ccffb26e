"""``[[prices]]`` in ``meterhub.toml``: the price feeds a running hub keeps up to date.

::

    [[prices]]
    source = "entsoe"                 # the only source so far
    zone = "NO1"                      # a bidding zone name or EIC code
    series = "no1"                    # the series tariffs name with --series
    direction = "import"              # or export: compensation for --export-series
    token_ref = "env:ENTSOE_TOKEN"    # the security token, as a reference (env: or file:)
    fetch_after = "13:00"             # CET/CEST; day-ahead prices come out about 12:45
    retry_s = 600                     # wait between tries while tomorrow is not out yet
    # base_url = "https://web-api.tp.entsoe.eu/api"
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from typing import Any

from meterhub.config import REFERENCE_SHAPES, secret_reference_problem
from meterhub.errors import ConfigError, InputError
from meterhub.ids import id_problem
from meterhub.model import Direction

from .entsoe import DEFAULT_BASE_URL
from .zones import BiddingZone, find_zone

__all__ = ["DEFAULT_FETCH_AFTER", "DEFAULT_RETRY_S", "PriceSource", "parse_price_sources"]

DEFAULT_FETCH_AFTER = time(13, 0)
"""When, in CET/CEST on the day before, to first ask for a delivery day's prices."""
DEFAULT_RETRY_S = 600
"""Seconds between tries while a due day is not published yet."""
_FIELDS = {"source", "zone", "series", "direction", "token_ref", "base_url", "fetch_after", "retry_s"}
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class PriceSource:
    """One price feed: where from, which zone, the series it fills, and when it asks."""

    zone: BiddingZone
    series: str
    token_ref: str
    source: str = "entsoe"
    base_url: str = DEFAULT_BASE_URL
    fetch_after: time = DEFAULT_FETCH_AFTER
    retry_s: int = DEFAULT_RETRY_S
    direction: Direction = Direction.IMPORT
    """``export`` stores the prices as export compensation (``places tariff --export-series``)."""


def parse_price_sources(tables: object, where: str = "meterhub.toml") -> tuple[PriceSource, ...]:
    """Build the ``[[prices]]`` tables of a parsed TOML document; raise ConfigError naming the field."""
    if tables is None:
        return ()
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{where}: prices must be an array of tables ([[prices]])")
    sources = tuple(_source(table, f"{where}: prices[{n}]") for n, table in enumerate(tables))
    filled = [(s.series, s.direction.value) for s in sources]
    twice = sorted(
        {f"{name} ({direction})" for name, direction in filled if filled.count((name, direction)) > 1}
    )
    if twice:
        raise ConfigError(f"{where}: price series filled by two [[prices]] tables: {', '.join(twice)}")
    return sources


def _source(table: Mapping[str, Any], where: str) -> PriceSource:
    unknown = sorted(set(table) - _FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; use {', '.join(sorted(_FIELDS))}")
    source = table.get("source", "entsoe")
    if source != "entsoe":
        raise ConfigError(f"{where}: source {source!r} is not known; use entsoe")
    zone_text = table.get("zone")
    if not isinstance(zone_text, str):
        raise ConfigError(f"{where}: zone must name a bidding zone such as NO1 or DE-LU")
    try:
        zone = find_zone(zone_text)
    except InputError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    series = table.get("series", f"entsoe-{zone.name.lower()}")
    if not isinstance(series, str) or id_problem(series) is not None:
        raise ConfigError(f"{where}: series {series!r} must be up to 64 letters, digits and _ . : -")
    token_ref = table.get("token_ref")
    if not isinstance(token_ref, str) or secret_reference_problem(token_ref) is not None:
        raise ConfigError(
            f"{where}: token_ref must be a reference like {REFERENCE_SHAPES}, never the token itself"
        )
    base_url = table.get("base_url", DEFAULT_BASE_URL)
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: base_url must be an http:// or https:// URL")
    fetch_after_text = table.get("fetch_after", DEFAULT_FETCH_AFTER.strftime("%H:%M"))
    match = _CLOCK.match(fetch_after_text) if isinstance(fetch_after_text, str) else None
    if match is None:
        raise ConfigError(f"{where}: fetch_after must be a time of day like 13:00 (CET/CEST)")
    retry_s = table.get("retry_s", DEFAULT_RETRY_S)
    if not isinstance(retry_s, int) or isinstance(retry_s, bool) or not 1 <= retry_s <= 86_400:
        raise ConfigError(f"{where}: retry_s must be whole seconds 1..86400")
    direction_text = table.get("direction", "import")
    if direction_text not in ("import", "export"):
        raise ConfigError(f"{where}: direction must be import or export")
    return PriceSource(
        zone,
        series,
        token_ref,
        source,
        base_url,
        time(int(match.group(1)), int(match.group(2))),
        retry_s,
        Direction(direction_text),
    )
