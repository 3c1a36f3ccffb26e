"""The A44 document parser on the shapes the platform sends and the ways a document can be wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meterhub.errors import PayloadError
from meterhub.pricefeeds.entsoe import EntsoeAcknowledgement, NoPricesFound, parse_document

NEXT, AFTER = "2026-03-29T22:00Z", "2026-03-30T22:00Z"
NS = "urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3"


def document(*series: str, doc_type: str = "A44") -> str:
    body = "".join(series)
    root = "Publication_MarketDocument"
    return f'<{root} xmlns="{NS}"><type>{doc_type}</type>{body}</{root}>'


def time_series(
    points: dict[int, str],
    *,
    start: str = "2026-03-28T23:00Z",
    end: str = "2026-03-29T22:00Z",
    resolution: str = "PT60M",
    curve: str = "A03",
    currency: str = "EUR",
    unit: str = "MWH",
    sequence: int | None = None,
) -> str:
    seq = (
        f"<classificationSequence_AttributeInstanceComponent.position>{sequence}"
        "</classificationSequence_AttributeInstanceComponent.position>"
        if sequence is not None
        else ""
    )
    body = "".join(
        f"<Point><position>{p}</position><price.amount>{v}</price.amount></Point>" for p, v in points.items()
    )
    return (
        f"<TimeSeries><currency_Unit.name>{currency}</currency_Unit.name>"
        f"<price_Measure_Unit.name>{unit}</price_Measure_Unit.name>{seq}<curveType>{curve}</curveType>"
        f"<Period><timeInterval><start>{start}</start><end>{end}</end></timeInterval>"
        f"<resolution>{resolution}</resolution>{body}</Period></TimeSeries>"
    )


def test_an_a03_curve_repeats_the_price_before_each_position_left_out_to_the_end() -> None:
    points = parse_document(document(time_series({1: "10", 3: "-5.5", 20: "30"})), "s")
    assert len(points) == 23  # the 23-hour day, every hour priced
    prices = [p.price_per_kwh for p in points]
    assert prices[:3] == [0.01, 0.01, -0.0055]
    assert prices[3:19] == [-0.0055] * 16 and prices[19:] == [0.03] * 4
    assert points[0].start == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert points[-1].end == datetime(2026, 3, 29, 22, tzinfo=UTC)


def test_an_a01_curve_leaves_a_missing_position_unpriced() -> None:
    points = parse_document(document(time_series({1: "10", 2: "11", 4: "13"}, curve="A01")), "s")
    assert [p.start.hour for p in points] == [23, 0, 2]


def test_the_first_sequence_then_the_finest_resolution_wins() -> None:
    day = {n: str(n) for n in range(1, 24)}
    quarters = {n: str(1000 + n) for n in range(1, 93)}
    second = {n: str(2000 + n) for n in range(1, 93)}
    points = parse_document(
        document(
            time_series(second, resolution="PT15M", sequence=2),
            time_series(day),
            time_series(quarters, resolution="PT15M", sequence=1),
        ),
        "s",
    )
    assert len(points) == 92
    assert all(p.end - p.start == timedelta(minutes=15) for p in points)
    assert points[0].price_per_kwh == pytest.approx(1.001)


def test_a_price_per_kwh_document_is_taken_as_it_is() -> None:
    points = parse_document(document(time_series({1: "0.25"}, unit="KWH")), "s")
    assert points[0].price_per_kwh == 0.25


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (document(time_series({1: "1"}, unit="MW")), "price_Measure_Unit.name MW is not MWH"),
        (document(time_series({1: "1"}, currency="€")), "is not a currency code"),
        (document(time_series({2: "1"})), "must begin at position 1"),
        (document(time_series({24: "1"})), "positions run past the 23 slots"),
        (document(time_series({1: "x"})), "price.amount 'x'"),
        (document(time_series({1: "1"}, resolution="P1D")), "resolution P1D is not like PT15M"),
        (document(time_series({1: "1"}, end="2026-03-29T22:10Z")), "is not a whole number of PT60M slots"),
        (
            document(time_series({1: "1"}), time_series({1: "1"}, currency="NOK", start=NEXT, end=AFTER)),
            "several currencies",
        ),
        (document(time_series({1: "1"}), doc_type="A65"), "type A65, not day-ahead prices"),
        (document(), "holds no prices"),
        ("<html>Service Unavailable</html>", "expected a Publication_MarketDocument, not <html>"),
        ("", "empty answer"),
    ],
)
def test_a_wrong_document_is_refused_with_its_reason(text: str, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_document(text, "s")
    assert message in str(caught.value)


def test_acknowledgements_are_told_apart() -> None:
    ack = (
        '<Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">'
        "<Reason><code>{code}</code><text>{text}</text></Reason></Acknowledgement_MarketDocument>"
    )
    with pytest.raises(NoPricesFound) as none:
        parse_document(ack.format(code="999", text="No matching data found for Data item"), "s")
    assert "reason 999" in str(none.value)
    with pytest.raises(EntsoeAcknowledgement) as other:
        parse_document(
            ack.format(code="999", text="The amount of requested data exceeds allowed limit."), "s"
        )
    assert not isinstance(other.value, NoPricesFound)
    assert "exceeds allowed limit" in str(other.value)
