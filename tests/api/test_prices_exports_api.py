"""``POST /api/v1/prices/{series}`` with Nord Pool's and ENTSO-E's own exports as the body, over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.conftest import ApiServer
from tests.api.formats import problem

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_an_entsoe_document_and_a_nord_pool_export_import_as_series(
    api: ApiServer, admin: httpx.Client
) -> None:
    xml = (FIXTURES / "entsoe" / "a44-de-lu-pt15m-2025-10-31.xml").read_bytes()
    answer = admin.post("/api/v1/prices/de-lu", content=xml, headers={"content-type": "application/xml"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "series": "de-lu",
        "read": 96,
        "stored": 96,
        "unchanged": 0,
        "start": "2025-10-30T23:00:00+00:00",
        "end": "2025-10-31T23:00:00+00:00",
    }
    slots = admin.get(
        "/api/v1/prices/de-lu", params={"start": "2025-10-30T23:00Z", "end": "2025-10-31T00:00Z"}
    )
    assert [s["price_per_kwh"] for s in slots.json()] == [0.10281, 0.08976, 0.08166, 0.07673]

    csv = (FIXTURES / "nordpool" / "dayahead-2026-10-25-no1-no2.csv").read_bytes()
    refused = admin.post("/api/v1/prices/np", content=csv, headers={"content-type": "text/csv"})
    assert "choose one with --zone" in problem(refused, 422)["detail"]
    taken = admin.post(
        "/api/v1/prices/np", params={"zone": "NO1"}, content=csv, headers={"content-type": "text/csv"}
    )
    assert taken.status_code == 200, taken.text
    assert taken.json()["read"] == 100
    listed = {row["series"]: row["slots"] for row in admin.get("/api/v1/prices").json()}
    assert listed == {"de-lu": 96, "np": 100}


def test_a_broken_document_is_a_400_and_stores_nothing(api: ApiServer, admin: httpx.Client) -> None:
    answer = admin.post(
        "/api/v1/prices/broken",
        content=b"<Publication_MarketDocument><TimeSeries>",
        headers={"content-type": "application/xml"},
    )
    assert "not well-formed XML" in problem(answer, 422)["detail"]
    assert admin.get("/api/v1/prices").json() == []
