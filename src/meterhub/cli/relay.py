"""``meterhub relay ID on|off``: switch a meter's relay and read the state back."""

from __future__ import annotations

import anyio
import click

from meterhub.cli.common import opened_store
from meterhub.errors import VendorError
from meterhub.model import Extra

__all__ = ["relay"]

MAX_RATE_WAIT_S = 120.0
"""The longest wait for a device's rate limit (a hub polling it may have just taken the slot)."""


@click.command()
@click.argument("meter_id")
@click.argument("state", type=click.Choice(["on", "off"]))
def relay(meter_id: str, state: str) -> None:
    """Switch the relay of METER_ID on or off and show what the device reports."""
    from meterhub.poller.live import RELAY_EXTRA, LedgerLive  # the poller stack only where it is used

    wanted = state == "on"

    def waiting(wait_s: float) -> None:
        click.echo(f"waiting {wait_s:.0f} s for the device's rate limit", err=True)

    with opened_store() as store:
        meter = store.get_meter(meter_id)
        contact = anyio.run(LedgerLive(on_wait=waiting).switch, store, meter, wanted, MAX_RATE_WAIT_S)
    fetched = contact.fetched
    reports: list[Extra] = [e for e in fetched.extras if e.name == RELAY_EXTRA] if fetched else []
    if not reports:
        raise VendorError(f"meter {meter_id!r}: the device did not report its relay state")
    shown = "on" if reports[-1].value >= 0.5 else "off"
    if shown != state:
        raise VendorError(f"asked {meter_id} to switch its relay {state}, but it reports {shown}")
    stored = len(fetched.readings) if fetched else 0
    click.echo(
        f"relay of {meter_id} is {shown} (as the device reports, live at {reports[-1].ts.isoformat()}; "
        f"its answer is stored as the meter's poll: {stored} readings)"
    )
