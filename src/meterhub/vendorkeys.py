"""Rotate a meter's vendor API key and keep the new key where the hub reads it.

Intellimeter is the vendor that offers it (``POST /key``). A meter names its key as
``key=env:NAME``, and the hub cannot write the user's environment: the new key is kept in the
hub's store, beside the vendor's session tokens, and every meter of the same account (the same
API address and the same key name) is switched to ``stored_key=store:intellimeter-key/NAME``
(see :mod:`meterhub.vendors.intellimeter.keys`). The key itself is never logged, returned or
shown; what changed is described by references only.

When the vendor fails, nothing changes: the meters keep their key reference, and the error says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from meterhub import catalog
from meterhub.errors import (
    ConfigError,
    InputError,
    MeterhubError,
    PayloadError,
    QuotaExceeded,
    StoreError,
    VendorAuthError,
    VendorError,
    VendorUnavailable,
)
from meterhub.model import Meter
from meterhub.poller.clock import Clock
from meterhub.poller.connectors import with_connector
from meterhub.store.base import Store
from meterhub.threads import run_ingest
from meterhub.vendors.base import Connector, TokenCache
from meterhub.vendors.intellimeter import keys
from meterhub.vendors.intellimeter.connector import IntellimeterConnector, session_token_key

__all__ = ["ROTATING_VENDORS", "KeyRotation", "rotate_meter_key"]

log = logging.getLogger(__name__)

ROTATING_VENDORS = frozenset({"intellimeter"})
"""Vendors whose API key the hub can rotate."""
_VENDOR = "intellimeter"


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """What a rotation changed, by references only: never a key."""

    meter_id: str
    previous: str
    """The reference the asking meter logged in with."""
    reference: str
    """The reference of the new key, in the hub's store."""
    meters: tuple[str, ...]
    """Every meter of the account, which now logs in with the new key."""
    switched: tuple[str, ...]
    """The meters whose options changed to the new reference (the rest had it already)."""

    def lines(self) -> list[str]:
        """Describe the rotation for people, one line each."""
        lines = [
            f"rotated the Intellimeter API key of meter {self.meter_id}; the old key no longer works",
            f"the new key is kept in the hub's store as {self.reference}",
        ]
        for meter_id in self.meters:
            if meter_id in self.switched:
                lines.append(f"meter {meter_id}: now logs in with {self.reference} (was {self.previous})")
            else:
                lines.append(f"meter {meter_id}: logs in with {self.reference}")
        return lines


def _base_url(meter: Meter) -> str:
    return meter.options.get("base_url", IntellimeterConnector.default_base_url).rstrip("/")


def _key_name(meter: Meter) -> str | None:
    reference = keys.key_reference(meter)
    if reference is None:
        return None
    try:
        return keys.key_name(reference)
    except ConfigError:
        return None


def _account_meters(meters: list[Meter], meter: Meter, name: str) -> list[Meter]:
    """Return the meters logging in with the same key: the same address and key name."""
    base_url = _base_url(meter)
    return [
        other
        for other in meters
        if other.vendor == _VENDOR and _base_url(other) == base_url and _key_name(other) == name
    ]


def _kept(exc: MeterhubError, previous: str) -> MeterhubError:
    """Return ``exc`` of the same kind, saying that the meters keep their key."""
    message = f"{exc}; the key was not rotated here and the meters keep {previous}"
    if isinstance(exc, QuotaExceeded):
        return QuotaExceeded(message, exc.retry_after_s)
    if isinstance(exc, PayloadError):
        return PayloadError(
            f"{exc}; the meters keep {previous}. If Intellimeter did rotate the key, read the new "
            "one on its site and put it in that reference"
        )
    for kind in (VendorAuthError, VendorUnavailable, VendorError, ConfigError, InputError):
        if isinstance(exc, kind):
            return kind(message)
    return VendorError(message)


async def rotate_meter_key(store: Store, meter_id: str, clock: Clock | None = None) -> KeyRotation:
    """Ask the vendor for a new API key of ``meter_id``'s account and switch its meters to it.

    Raise UnknownMeterError for an unknown meter, InputError for a meter without a key to
    rotate, and a VendorError (the meters unchanged) when the vendor fails.
    """
    meter = await run_ingest(store.get_meter, meter_id)
    if meter.vendor not in ROTATING_VENDORS:
        raise InputError(
            f"meter {meter_id!r} ({meter.vendor}) has no API key the hub can rotate; "
            "only Intellimeter meters have one"
        )
    previous = keys.key_reference(meter)
    if previous is None:
        raise InputError(
            f"meter {meter_id!r} logs in with a user name and password, not an API key; "
            "give it the option key=env:NAME to rotate a key"
        )
    name = keys.key_name(previous)
    reference = keys.stored_reference(name)
    sharing = _account_meters(await run_ingest(store.list_meters), meter, name)

    async def rotate(connector: Connector) -> str:
        if not isinstance(connector, IntellimeterConnector):
            raise InputError(f"meter {meter_id!r} has no API key the hub can rotate")
        return await connector.rotate_key()

    try:
        new_key = await with_connector(store, meter, rotate, clock)
    except MeterhubError as exc:
        raise _kept(exc, previous) from exc
    tokens = TokenCache(store, _VENDOR)
    try:
        await tokens.put(keys.stored_token_key(_base_url(meter), name), new_key, None)
    except StoreError as exc:
        raise StoreError(
            f"Intellimeter rotated the key, but the hub could not keep it ({exc}); the old key no "
            f"longer works: read the new one on Intellimeter's site and put it in {previous}"
        ) from exc
    switched = []
    for other in sharing:
        if other.options.get(keys.STORED_KEY_OPTION) != reference or keys.KEY_OPTION in other.options:
            options = {keys.KEY_OPTION: None, keys.STORED_KEY_OPTION: reference}
            await run_ingest(_update_options, store, other.id, options)
            switched.append(other.id)
        await tokens.forget(session_token_key(other))  # the next call logs in with the new key
    log.info(
        "rotated the Intellimeter API key of meter %s; %d meter(s) now log in with %s",
        meter_id,
        len(sharing),
        reference,
    )
    return KeyRotation(meter_id, previous, reference, tuple(m.id for m in sharing), tuple(switched))


def _update_options(store: Store, meter_id: str, options: dict[str, str | None]) -> None:
    catalog.update_meter(store, meter_id, options=options)
