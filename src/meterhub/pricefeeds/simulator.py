"""The ENTSO-E transparency platform's day-ahead price API, simulated for tests and demos.

``GET /api?documentType=A44&in_Domain=<EIC>&out_Domain=<EIC>&periodStart=yyyyMMddHHmm
&periodEnd=yyyyMMddHHmm&securityToken=<token>`` answers as the platform documents it:

- a missing or unknown token: HTTP 401 with an HTML page (no XML);
- more than 400 requests a minute per token: HTTP 429 with Retry-After;
- a malformed request (other document type, in and out domains differing, an unknown EIC,
  times not ``yyyyMMddHHmm``, more than a year): HTTP 400 with an Acknowledgement_MarketDocument;
- nothing published for the interval: HTTP 200 with an Acknowledgement, reason 999
  "No matching data found ...";
- else a Publication_MarketDocument of type A44: one TimeSeries per delivery day (the zone's
  local day, so 92 or 100 quarter hours on the days clocks change), curve type A03 with each
  position whose price repeats the one before left out, PT60M for days before 2025-10-01 and
  PT15M from then on (when the single day-ahead coupling moved to 15-minute products); for
  DE-LU a 15-minute day comes as two TimeSeries, classificationSequence positions 2 and 1, in
  that order, as the platform sends them.

A delivery day is published at 12:45 CET the day before (``publish_at``); prices are
deterministic per seed, zone and slot (:class:`Market`). Variants reproduce what happens on
the real platform: ``late-publication`` (the auction results come at 15:30, as after a
decoupling), ``dual-resolution`` (a 15-minute day also published as an hourly series, as during
the transition), ``truncated-xml`` (the answer is cut off mid-document).
"""

from __future__ import annotations

import hmac
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from meterhub.timeutil import get_zone
from meterhub.vendors.physics import SimClock
from meterhub.vendors.simkit import QuotaWindow, SimKit

from .zones import ZONES, BiddingZone, day_bounds

__all__ = ["DEFAULT_TOKEN", "FIFTEEN_MINUTES_FROM", "SEQUENCED_ZONES", "Market", "create_app"]

DEFAULT_TOKEN = "sim-entsoe-0c1f6a7e-4b2d-4e59-9a3f-6d1b2c3e4f50"  # noqa: S105 - the simulator's public test token
"""The security token the simulator accepts unless told another."""
FIFTEEN_MINUTES_FROM = date(2025, 10, 1)
"""The first delivery day with 15-minute day-ahead prices."""
PUBLISH_TZ = "Europe/Brussels"
SEQUENCED_ZONES = frozenset({"DE-LU"})
"""Zones whose 15-minute days come as two TimeSeries, classificationSequence positions 2 and 1."""
LATE_PUBLISH_AT = time(15, 30)
VARIANTS = {
    "late-publication": "the day's results come at 15:30 CET instead of 12:45, as after a decoupling",
    "dual-resolution": "a 15-minute day is also published as an hourly series, as in the transition",
    "truncated-xml": "the price document is cut off in the middle",
}
_PUBLICATION_NS = "urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3"
_ACK_NS = "urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0"
_PLATFORM_EIC = "10X1001A1001A450"
_SENDER = (
    f'  <sender_MarketParticipant.mRID codingScheme="A01">{_PLATFORM_EIC}</sender_MarketParticipant.mRID>\n'
    "  <sender_MarketParticipant.marketRole.type>A32</sender_MarketParticipant.marketRole.type>\n"
)


class Market:
    """Deterministic day-ahead prices in EUR/MWh per seed, zone and slot."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def hourly_eur_mwh(self, eic: str, hour_start: datetime, tz: str) -> float:
        """Return the price of the hour starting at ``hour_start`` (a daily shape plus noise)."""
        local_hour = hour_start.astimezone(get_zone(tz)).hour
        rng = random.Random(f"{self.seed}:{eic}:{int(hour_start.timestamp())}:h")  # noqa: S311 - reproducible prices
        shape = {7: 25.0, 8: 35.0, 9: 20.0, 17: 30.0, 18: 40.0, 19: 25.0}.get(local_hour, 0.0)
        night = -15.0 if local_hour < 5 else 0.0
        return round(55.0 + shape + night + rng.uniform(-12.0, 12.0), 2)

    def price_eur_mwh(self, eic: str, slot_start: datetime, step: timedelta, tz: str) -> float:
        """Return the price of the slot of length ``step`` starting at ``slot_start``."""
        hour_start = slot_start.replace(minute=0, second=0, microsecond=0)
        hourly = self.hourly_eur_mwh(eic, hour_start, tz)
        if step >= timedelta(hours=1):
            return hourly
        rng = random.Random(f"{self.seed}:{eic}:{int(hour_start.timestamp())}:q")  # noqa: S311 - reproducible prices
        if rng.random() < 0.5:
            return hourly  # the four quarters clear at the hour's price
        offsets = [rng.choice((-4.0, -4.0, 0.0, 3.5)) for _ in range(4)]
        return round(hourly + offsets[slot_start.minute // 15], 2)

    def day_slots(self, zone: BiddingZone, day: date, step: timedelta, sequence: int = 1) -> list[float]:
        """Return the prices of ``zone``'s local delivery ``day`` at resolution ``step``.

        ``sequence`` 2 is a zone's second auction (its own prices), as the platform publishes
        for the zones in :data:`SEQUENCED_ZONES`.
        """
        start, end = day_bounds(day, zone.tz)
        count = (end - start) // step
        key = zone.eic if sequence == 1 else f"{zone.eic}:{sequence}"
        return [self.price_eur_mwh(key, start + step * n, step, zone.tz) for n in range(count)]


def create_app(
    seed: int = 1,
    speed: float = 1.0,
    token: str = DEFAULT_TOKEN,
    publish_at: str = "12:45",
    start: datetime | None = None,
) -> Starlette:
    """Return the simulated platform: ``GET /api`` plus the ``/_sim`` control routes."""
    market = Market(seed)
    quota = QuotaWindow(400, 60.0)
    hour, _, minute = publish_at.partition(":")
    usual_publish = time(int(hour), int(minute or 0))
    kit = SimKit(
        "entsoe",
        SimClock(start, speed),
        info=lambda: {
            "api": "/api",
            "token": token,
            "publish_at_cet": (
                LATE_PUBLISH_AT if kit.variant("late-publication") else usual_publish
            ).isoformat(),
            "zones": {zone.name: zone.eic for zone in ZONES},
        },
        variants=VARIANTS,
    )

    def publish_time() -> time:
        return LATE_PUBLISH_AT if kit.variant("late-publication") else usual_publish

    def published(day: date, now: datetime) -> bool:
        at = publish_time()
        before = day - timedelta(days=1)
        moment = datetime.combine(before, at, tzinfo=get_zone(PUBLISH_TZ))
        return now >= moment

    async def api(request: Request) -> Response:
        params = request.query_params
        given = params.get("securityToken", "")
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            return HTMLResponse(_UNAUTHORIZED, status_code=401)
        now = kit.clock.now()
        if not quota.allow(given, now):
            wait_s = max(1, int(quota.retry_after_s(given, now) + 0.999))
            return Response(
                "Too Many Requests: at most 400 requests per minute per user",
                status_code=429,
                headers={"Retry-After": str(wait_s)},
                media_type="text/plain",
            )
        try:
            zone, start, end = _request(params)
        except ValueError as exc:
            return _ack(now, str(exc), status=400)
        days = [day for day in _days(zone, start, end) if published(day, now)]
        if not days:
            return _ack(
                now,
                f"No matching data found for Data item Day-ahead Prices [12.1.D] ({zone.eic}, {zone.eic})"
                f" and interval {start:%Y-%m-%dT%H:%M:%S.000Z}/{end:%Y-%m-%dT%H:%M:%S.000Z}.",
            )
        body = _publication(market, zone, days, now, dual=kit.variant("dual-resolution"))
        if kit.variant("truncated-xml"):
            body = body[: len(body) // 2]
        return Response(body, media_type="text/xml")

    app = kit.app([Route("/api", api, methods=["GET"])])
    app.state.market = market
    return app


_UNAUTHORIZED = (
    "<html><head><title>401 Unauthorized</title></head><body><h1>Unauthorized</h1>"
    "<p>The security token is missing or not valid.</p></body></html>"
)


def _request(params: Any) -> tuple[BiddingZone, datetime, datetime]:
    document = params.get("documentType", "")
    if document != "A44":
        raise ValueError(
            f"The combination of [documentType={document or 'missing'}] is not valid, "
            "or the requested data is not allowed to be fetched via this service."
        )
    in_domain, out_domain = params.get("in_Domain", ""), params.get("out_Domain", "")
    if in_domain != out_domain:
        raise ValueError("For Day-ahead Prices in_Domain and out_Domain must be the same bidding zone.")
    zone = next((z for z in ZONES if z.eic == in_domain), None)
    if zone is None:
        raise ValueError(f"Domain {in_domain or 'missing'} is not a known bidding zone.")
    start = _stamp(params.get("periodStart", ""), "periodStart")
    end = _stamp(params.get("periodEnd", ""), "periodEnd")
    if end <= start:
        raise ValueError("periodEnd must be after periodStart.")
    if end - start > timedelta(days=366):
        raise ValueError("The amount of requested data exceeds allowed limit: one year at most.")
    return zone, start, end


def _stamp(text: str, name: str) -> datetime:
    try:
        if len(text) != 12 or not text.isdigit():
            raise ValueError(text)
        return datetime.strptime(text, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"Parameter {name} [{text}] is not in the format yyyyMMddHHmm.") from None


def _days(zone: BiddingZone, start: datetime, end: datetime) -> Iterator[date]:
    local = get_zone(zone.tz)
    day = start.astimezone(local).date()
    while True:
        day_start, day_end = day_bounds(day, zone.tz)
        if day_start >= end:
            return
        if day_end > start:
            yield day
        day += timedelta(days=1)


def _receiver(eic: str, role: str) -> str:
    return (
        f'  <receiver_MarketParticipant.mRID codingScheme="A01">{eic}</receiver_MarketParticipant.mRID>\n'
        f"  <receiver_MarketParticipant.marketRole.type>{role}</receiver_MarketParticipant.marketRole.type>\n"
    )


def _ack(now: datetime, text: str, status: int = 200) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Acknowledgement_MarketDocument xmlns="{_ACK_NS}">\n'
        f"  <mRID>{uuid.uuid4().hex}</mRID>\n"
        f"  <createdDateTime>{now:%Y-%m-%dT%H:%M:%SZ}</createdDateTime>\n"
        + _SENDER
        + _receiver("10X1001A1001A39W", "A39")
        + f"  <received_MarketDocument.createdDateTime>{now:%Y-%m-%dT%H:%M:%SZ}"
        "</received_MarketDocument.createdDateTime>\n"
        "  <Reason>\n    <code>999</code>\n"
        f"    <text>{escape(text)}</text>\n  </Reason>\n"
        "</Acknowledgement_MarketDocument>\n"
    )
    return Response(body, status_code=status, media_type="text/xml")


def _publication(market: Market, zone: BiddingZone, days: list[date], now: datetime, dual: bool) -> str:
    first, _ = day_bounds(days[0], zone.tz)
    _, last = day_bounds(days[-1], zone.tz)
    series: list[str] = []
    for day in days:
        quarter = day >= FIFTEEN_MINUTES_FROM
        steps = [timedelta(minutes=15)] if quarter else [timedelta(hours=1)]
        if quarter and dual:
            steps.append(timedelta(hours=1))
        for step in steps:
            if zone.name in SEQUENCED_ZONES and quarter:
                for sequence in (2, 1):  # as the platform lists them: the second auction first
                    series.append(_time_series(len(series) + 1, market, zone, day, step, sequence))
            else:
                series.append(_time_series(len(series) + 1, market, zone, day, step))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Publication_MarketDocument xmlns="{_PUBLICATION_NS}">\n'
        f"  <mRID>{uuid.uuid4().hex}</mRID>\n"
        "  <revisionNumber>1</revisionNumber>\n"
        "  <type>A44</type>\n"
        + _SENDER
        + _receiver(_PLATFORM_EIC, "A33")
        + f"  <createdDateTime>{now:%Y-%m-%dT%H:%M:%SZ}</createdDateTime>\n"
        f"  <period.timeInterval>\n    <start>{first:%Y-%m-%dT%H:%MZ}</start>\n"
        f"    <end>{last:%Y-%m-%dT%H:%MZ}</end>\n  </period.timeInterval>\n"
        + "".join(series)
        + "</Publication_MarketDocument>\n"
    )


def _time_series(
    number: int, market: Market, zone: BiddingZone, day: date, step: timedelta, sequence: int | None = None
) -> str:
    start, end = day_bounds(day, zone.tz)
    prices = market.day_slots(zone, day, step, sequence or 1)
    points: list[str] = []
    before: float | None = None
    for position, price in enumerate(prices, start=1):
        if price != before:  # curve A03: a price equal to the one before is left out
            points.append(
                f"      <Point>\n        <position>{position}</position>\n"
                f"        <price.amount>{price:.2f}</price.amount>\n      </Point>\n"
            )
        before = price
    minutes = int(step.total_seconds() // 60)
    return (
        "  <TimeSeries>\n"
        f"    <mRID>{number}</mRID>\n"
        "    <auction.type>A01</auction.type>\n"
        "    <businessType>A62</businessType>\n"
        f'    <in_Domain.mRID codingScheme="A01">{zone.eic}</in_Domain.mRID>\n'
        f'    <out_Domain.mRID codingScheme="A01">{zone.eic}</out_Domain.mRID>\n'
        "    <contract_MarketAgreement.type>A01</contract_MarketAgreement.type>\n"
        "    <currency_Unit.name>EUR</currency_Unit.name>\n"
        "    <price_Measure_Unit.name>MWH</price_Measure_Unit.name>\n"
        + (
            f"    <classificationSequence_AttributeInstanceComponent.position>{sequence}"
            "</classificationSequence_AttributeInstanceComponent.position>\n"
            if sequence is not None
            else ""
        )
        + "    <curveType>A03</curveType>\n"
        "    <Period>\n"
        f"      <timeInterval>\n        <start>{start:%Y-%m-%dT%H:%MZ}</start>\n"
        f"        <end>{end:%Y-%m-%dT%H:%MZ}</end>\n      </timeInterval>\n"
        f"      <resolution>PT{minutes}M</resolution>\n"
        + "".join(points)
        + "    </Period>\n  </TimeSeries>\n"
    )
