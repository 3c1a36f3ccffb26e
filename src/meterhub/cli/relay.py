"""``meterhub relay ID on|off``: switch a meter's relay and read the state back."""

from __future__ import annotations

import anyio
import click

from meterhub.cli.common import opened_store
from meterhub.errors import QuotaExceeded, VendorError
from meterhub.model import Extra, Meter, utc_now
from meterhub.poller.connectors import with_connector
from meterhub.store import Store
from meterhub.vendors.base import Connector

__all__ = ["relay"]

MAX_RATE_WAIT_S = 120.0
"""The longest wait for a device's rate limit (a hub polling it may have just taken the slot)."""


@click.command()
@click.argument("meter_id")
@click.argument("state", type=click.Choice(["on", "off"]))
def relay(meter_id: str, state: str) -> None:
    """Switch the relay of METER_ID on or off and show what the device reports."""
    wanted = state == "on"
    with opened_store() as store:
        meter = store.get_meter(meter_id)
        reported = anyio.run(_switch, store, meter, wanted)
        store.write_extras([Extra(meter_id, utc_now(), "relay_on", 1.0 if reported else 0.0)])
    shown = "on" if reported else "off"
    if reported != wanted:
        raise VendorError(f"asked {meter_id} to switch its relay {state}, but it reports {shown}")
    click.echo(f"relay of {meter_id} is {shown} (as the device reports)")


async def _switch(store: Store, meter: Meter, on: bool) -> bool:
    """Switch the relay, waiting once for the device's rate limit if a poll just used it."""

    async def switch(connector: Connector) -> bool:
        return await connector.set_relay(on)

    try:
        return await with_connector(store, meter, switch)
    except QuotaExceeded as exc:
        wait_s = exc.retry_after_s
        if wait_s is None or wait_s > MAX_RATE_WAIT_S:
            raise
        click.echo(f"waiting {wait_s:.0f} s for the device's rate limit", err=True)
        await anyio.sleep(wait_s + 0.05)
        return await with_connector(store, meter, switch)
