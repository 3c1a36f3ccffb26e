"""``/api/v1/meters/{id}/relay`` against the smart-MAC simulator served on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from meterhub.poller.connectors import SLOT_MARGIN_S
from tests.api.conftest import ApiServer
from tests.api.formats import problem, xml_root
from tests.simservers import Sim, simulator


@pytest.fixture
def device(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    """Serve one extended-rate smart-MAC device (one request per 6 s) and export its PIN."""
    with simulator("smartmac", extended=True) as sim:
        monkeypatch.setenv("T_SMARTMAC_PIN", sim.info()["devpass"])
        yield sim


@pytest.fixture
def hub(api: ApiServer, admin: httpx.Client, device: Sim) -> ApiServer:
    """Return the hub with the device added as meter ``sm`` and an IAMMETER meter ``iam``."""
    options = {
        "base_url": device.base_url,
        "devid": device.info()["devid"],
        "devpass": "env:T_SMARTMAC_PIN",
        "rate_class": "extended",
    }
    added = admin.post(
        "/api/v1/meters", json={"id": "sm", "vendor": "smartmac", "phases": 3, "options": options}
    )
    assert added.status_code == 201, added.text
    iam = {"id": "iam", "vendor": "iammeter", "options": {"sn": "X", "username": "u", "password": "env:P"}}
    assert admin.post("/api/v1/meters", json=iam).status_code == 201
    return api


def test_switching_on_and_off_reaches_the_device(hub: ApiServer, admin: httpx.Client, device: Sim) -> None:
    assert device.info()["relay_on"] is False
    assert admin.get("/api/v1/meters/sm/relay").json() == {
        "meter": "sm",
        "on": None,
        "ts": None,
        "age_s": None,
        "source": "recorded",
        "next_live_in_s": 0.0,
    }
    on = admin.put("/api/v1/meters/sm/relay", json={"state": "on"})
    assert on.status_code == 200, on.text
    assert on.json()["on"] is True and on.json()["source"] == "device"
    assert device.info()["relay_on"] is True
    recorded = admin.get("/api/v1/meters/sm/relay").json()
    assert recorded["on"] is True and recorded["source"] == "recorded" and recorded["ts"] == on.json()["ts"]
    off = admin.put("/api/v1/meters/sm/relay", json={"state": "off"})  # waits out the device's 6 s pace
    assert off.status_code == 200, off.text
    assert off.json()["on"] is False and device.info()["relay_on"] is False
    # the switch was the device's turn: a live read now answers its stored state with its age
    live = admin.get("/api/v1/meters/sm/relay", params={"live": "true", "format": "xml"})
    root = xml_root(live)
    assert root.tag == "relay" and root.findtext("on") == "false" and root.findtext("source") == "recorded"
    assert root.findtext("ts") == off.json()["ts"]
    assert 0 < float(root.findtext("next_live_in_s") or 0) <= 6 + SLOT_MARGIN_S
    assert device.calls()["/"] == 2


def test_vendors_without_a_relay_answer_409(hub: ApiServer, admin: httpx.Client) -> None:
    for answer in (
        admin.get("/api/v1/meters/iam/relay"),
        admin.put("/api/v1/meters/iam/relay", json={"state": "on"}),
    ):
        assert "no relay" in problem(answer, 409)["detail"]


def test_roles_and_visibility(hub: ApiServer, anon: httpx.Client, device: Sim) -> None:
    problem(anon.get("/api/v1/meters/sm/relay"), 401)
    problem(anon.put("/api/v1/meters/sm/relay", json={"state": "on"}), 401)
    viewer = hub.user("vic", "viewer", [("meter", "sm")])
    assert viewer.get("/api/v1/meters/sm/relay").status_code == 200
    problem(viewer.put("/api/v1/meters/sm/relay", json={"state": "on"}), 403)
    outsider = hub.user("otto", "member")
    problem(outsider.get("/api/v1/meters/sm/relay"), 404)
    problem(outsider.put("/api/v1/meters/sm/relay", json={"state": "on"}), 404)
    assert device.info()["relay_on"] is False


def test_bad_commands_and_missing_secrets(
    hub: ApiServer, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for body in ({"state": "toggle"}, {"state": True}, {}, {"state": "on", "extra": 1}):
        problem(admin.put("/api/v1/meters/sm/relay", json=body), 422)
    monkeypatch.delenv("T_SMARTMAC_PIN")
    missing = problem(admin.put("/api/v1/meters/sm/relay", json={"state": "on"}), 409)
    assert "T_SMARTMAC_PIN" in missing["detail"]


def test_a_busy_device_answers_429_with_retry_after(hub: ApiServer, admin: httpx.Client, device: Sim) -> None:
    admin.patch("/api/v1/meters/sm", json={"options": {"rate_class": "standard"}})
    assert admin.put("/api/v1/meters/sm/relay", json={"state": "on"}).status_code == 200
    busy = admin.put("/api/v1/meters/sm/relay", json={"state": "off"})
    problem(busy, 429)
    assert 1 <= int(busy.headers["retry-after"]) <= 61  # the device's minute and the quota margin
    assert device.info()["relay_on"] is True


def test_an_unreachable_or_misconfigured_device_is_not_a_500(
    hub: ApiServer, admin: httpx.Client, device: Sim
) -> None:
    admin.patch("/api/v1/meters/sm", json={"options": {"base_url": "nonsense://device"}})
    assert (
        "not a usable address"
        in problem(admin.get("/api/v1/meters/sm/relay", params={"live": "true"}), 409)["detail"]
    )
    admin.patch("/api/v1/meters/sm", json={"options": {"base_url": device.base_url}})
    device.faults(offline=True)
    assert "smart-MAC" in problem(admin.put("/api/v1/meters/sm/relay", json={"state": "on"}), 502)["detail"]
