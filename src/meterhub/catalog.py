"""The meters the hub knows: adding, changing, discovering and removing them, checked one way.

The CLI (``meterhub meters``), the API (``/api/v1/meters``) and the dashboard's manage pages all
change meters through these functions, so a value is accepted or refused the same everywhere,
with the same message. A refused value raises :class:`FieldError`, an ``InputError`` that
names the field it concerns (``id``, ``vendor``, ``phases``, ``tz``, ``interval_s``, ``name`` or
``options``, or ``options.<key>`` for one option), so a form can show the message next to
that field.

Secrets are never stored: an option holding a password, key, PIN or token is accepted only as a
reference, ``env:NAME`` to an environment variable of the hub or ``file:/path`` to a file only
its owner may read.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import cast

import anyio.to_thread
import httpx

from meterhub import discoverycache, placebook
from meterhub.config import REFERENCE_SHAPES, is_secret_reference, secret_reference_problem
from meterhub.errors import ConfigError, ConflictError, FieldError, MeterhubError, NotFoundError
from meterhub.hubzone import check_zone, default_zone
from meterhub.ids import id_problem
from meterhub.model import VENDOR_FILE, Meter, Role, utc_now
from meterhub.poller.config import SECRET_OPTIONS, check_secret_options
from meterhub.poller.connectors import (
    ConnectorClass,
    ConnectorFactory,
    known_vendors,
    min_poll_interval_s,
    with_connector,
)
from meterhub.store.base import Store
from meterhub.vendors.base import Connector, Discovered, DiscoveredPlace
from meterhub.vendors.registry import load_connector

__all__ = [
    "MAX_INTERVAL_S",
    "MAX_NAME_CHARS",
    "OPTION_KEY_PATTERN",
    "SECRET_OPTIONS",
    "AddedFound",
    "DiscoveryAnswer",
    "FieldError",
    "add_discovered",
    "add_meter",
    "check_complete",
    "check_interval_s",
    "check_meter_id",
    "check_name",
    "check_options",
    "check_phases",
    "check_vendor",
    "check_vendor_options",
    "check_zone",
    "device_interval_s",
    "discover_meters",
    "discover_meters_kept",
    "is_reference",
    "remove_meter",
    "update_meter",
    "vendor_choices",
    "vendor_interval_s",
]

OPTION_KEY_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
"""Option names: lower-case letters, digits and ``_``, at most 32 characters."""
MAX_OPTION_CHARS = 500
MAX_OPTIONS = 32
MAX_NAME_CHARS = 200
MAX_INTERVAL_S = 86_400
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def vendor_choices() -> tuple[str, ...]:
    """Return the vendors a meter may have: every connector's, and ``file`` for imports."""
    return (*known_vendors(), VENDOR_FILE)


def check_meter_id(meter_id: str) -> str:
    """Return ``meter_id`` if it is a valid id; raise FieldError (``id``) otherwise."""
    problem = id_problem(meter_id)
    if problem is not None:
        raise FieldError("id", problem)
    return meter_id


def check_vendor(name: str) -> str:
    """Return the vendor's name in lower case; raise FieldError (``vendor``) for an unknown one."""
    vendor = name.strip().lower()
    choices = vendor_choices()
    if vendor not in choices:
        raise FieldError("vendor", f"unknown vendor {name!r}; choose one of {', '.join(choices)}")
    return vendor


def zone_or_default(store: Store, tz: str | None) -> str:
    """Return ``tz`` checked, or the hub's default zone (:mod:`meterhub.hubzone`) when None."""
    return check_zone(tz) if tz is not None else default_zone(store).tz


def check_phases(phases: int) -> int:
    """Return ``phases`` if it is 1, 2 or 3; raise FieldError (``phases``) otherwise."""
    if phases not in (1, 2, 3):
        raise FieldError("phases", f"phases must be 1, 2 or 3, not {phases}")
    return phases


def check_interval_s(interval_s: int) -> int:
    """Return ``interval_s`` if it lies in 1..86400; raise FieldError (``interval_s``) otherwise."""
    if not 1 <= interval_s <= MAX_INTERVAL_S:
        raise FieldError(
            "interval_s", f"the interval must be 1 to {MAX_INTERVAL_S} seconds, not {interval_s}"
        )
    return interval_s


def check_name(name: str) -> str:
    """Return a meter's label if it is short and free of control characters (field ``name``)."""
    if len(name) > MAX_NAME_CHARS:
        raise FieldError("name", f"the name is longer than {MAX_NAME_CHARS} characters")
    if _CONTROL.search(name):
        raise FieldError("name", "the name holds a control character")
    return name


def is_reference(value: str) -> bool:
    """Tell whether an option value is a secret reference (``env:NAME`` or ``file:/path``)."""
    return is_secret_reference(value)


def check_options(options: Mapping[str, str]) -> dict[str, str]:
    """Return options whose keys are plain names and whose secrets are ``env:NAME`` references.

    Raise FieldError (``options``) naming the option that is wrong.
    """
    if len(options) > MAX_OPTIONS:
        raise FieldError("options", f"a meter has at most {MAX_OPTIONS} options")
    for key, value in options.items():
        if not re.fullmatch(OPTION_KEY_PATTERN, key):
            raise FieldError(
                f"options.{key}", f"option name {key!r} must be lower-case letters, digits and _ (at most 32)"
            )
        if len(value) > MAX_OPTION_CHARS:
            raise FieldError(f"options.{key}", f"option {key!r} is longer than {MAX_OPTION_CHARS} characters")
        if is_reference(value) and secret_reference_problem(value) is not None:
            problem = f"option {key!r}: a reference must look like {REFERENCE_SHAPES}"
            raise FieldError(f"options.{key}", problem)
    for key, value in options.items():
        try:
            check_secret_options({key: value}, "options")
        except ConfigError as exc:
            raise FieldError(f"options.{key}", str(exc)) from exc
    return dict(options)


def vendor_interval_s(vendor: str) -> int:
    """Return the vendor's shortest polling interval (60 s for ``file`` meters, fed by imports)."""
    if vendor == VENDOR_FILE:
        return 60
    return int(cast(ConnectorClass, load_connector(vendor)).min_interval_s)


@functools.cache
def _idle_client() -> httpx.AsyncClient:
    """Return the HTTP client of connectors built only to read their options: never opened."""
    return httpx.AsyncClient()


def device_interval_s(store: Store, meter: Meter) -> int:
    """Return the meter's shortest polling interval: its device's own (a smart-MAC's rate class).

    Options that cannot be used yet give the vendor's interval.
    """
    if meter.vendor == VENDOR_FILE:
        return 60
    factory = ConnectorFactory(store, _idle_client())
    connector_class = factory.connector_class(meter.vendor)
    try:
        return min_poll_interval_s(connector_class, factory.build(meter))
    except MeterhubError:
        return int(connector_class.min_interval_s)


def add_meter(
    store: Store,
    meter_id: str,
    vendor: str,
    *,
    phases: int = 1,
    tz: str | None = None,
    interval_s: int | None = None,
    name: str = "",
    options: Mapping[str, str] | None = None,
) -> Meter:
    """Check and add a meter; without ``interval_s`` it is polled as fast as its device allows.

    Without ``tz`` the meter takes the hub's default zone (:func:`meterhub.hubzone.default_zone`).

    Raise FieldError for a malformed value and ConflictError when the id is taken.
    """
    meter = Meter(
        check_meter_id(meter_id),
        check_vendor(vendor),
        check_phases(phases),
        zone_or_default(store, tz),
        check_interval_s(interval_s) if interval_s is not None else 60,
        check_name(name),
        check_options(options or {}),
    )
    check_complete(meter)
    if interval_s is None:
        meter = replace(meter, interval_s=device_interval_s(store, meter))
    store.add_meter(meter)
    return meter


def check_complete(meter: Meter) -> None:
    """Raise FieldError (``options``) when the meter lacks options its vendor needs to be polled."""
    check_vendor_options(meter.vendor, meter.options)


def check_vendor_options(vendor: str, options: Mapping[str, str]) -> None:
    """Raise FieldError (``options``) when ``options`` lack what a meter of ``vendor`` needs."""
    if vendor == VENDOR_FILE:
        return
    missing = getattr(load_connector(vendor), "missing_options", None)
    problem = missing(options) if missing is not None else None
    if problem is not None:
        raise FieldError("options", problem)


def update_meter(
    store: Store,
    meter_id: str,
    *,
    phases: int | None = None,
    tz: str | None = None,
    interval_s: int | None = None,
    name: str | None = None,
    options: Mapping[str, str | None] | None = None,
) -> Meter:
    """Change a meter's settings; options given are merged, and an option set to None is removed.

    Raise UnknownMeterError for an unknown id and FieldError for a malformed value.
    """
    meter = store.get_meter(meter_id)
    merged = dict(meter.options)
    for key, value in (options or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    updated = Meter(
        meter.id,
        meter.vendor,
        check_phases(phases) if phases is not None else meter.phases,
        check_zone(tz) if tz is not None else meter.tz,
        check_interval_s(interval_s) if interval_s is not None else meter.interval_s,
        check_name(name) if name is not None else meter.name,
        check_options(merged),
    )
    check_complete(updated)
    store.update_meter(updated)
    return updated


def remove_meter(store: Store, meter_id: str) -> int:
    """Remove a meter and all its data; return how many readings went with it."""
    return store.remove_meter(meter_id)


async def discover_meters(
    store: Store, vendor: str, options: Mapping[str, str], tz: str | None = None
) -> list[Discovered]:
    """Ask a vendor's account or device which meters it holds, with the connection ``options``.

    A meter's zone is the vendor's where it says, else ``tz``, else the hub's default zone. The
    same question asked again within the vendor's quota window gets the kept answer
    (:mod:`meterhub.discoverycache`).

    Raise FieldError for a malformed value (``file`` has nothing to discover) and a
    VendorError when the vendor fails.
    """
    return (await discover_meters_kept(store, vendor, options, tz)).found


async def discover_meters_kept(
    store: Store, vendor: str, options: Mapping[str, str], tz: str | None = None, *, fresh: bool = False
) -> DiscoveryAnswer:
    """Discover as :func:`discover_meters` does; tell also whether the answer was kept from earlier.

    With ``fresh`` the vendor is asked even when an answer is kept (its quota permitting).
    """
    name = check_vendor(vendor)
    if name == VENDOR_FILE:
        raise FieldError("vendor", "file meters are fed by imports; there is nothing to discover")
    probe = Meter(
        f"discover-{name}",
        name,
        1,
        zone_or_default(store, tz),
        vendor_interval_s(name),
        "",
        check_options(options),
    )
    key = discoverycache.discovery_key(name, options, tz)
    now = utc_now()
    if not fresh:
        kept = await anyio.to_thread.run_sync(discoverycache.kept_discovery, store, key, now)
        if kept is not None:
            return DiscoveryAnswer(kept.found, kept.asked_at, kept=True)

    async def run(connector: Connector) -> list[Discovered]:
        return await connector.discover()

    found = await with_connector(store, probe, run)
    rules = cast(ConnectorClass, load_connector(name)).quotas
    keep_for_s = discoverycache.keep_s(rules)
    await anyio.to_thread.run_sync(discoverycache.keep_discovery, store, key, found, now, keep_for_s)
    return DiscoveryAnswer(found, now, kept=False)


@dataclass(frozen=True, slots=True)
class DiscoveryAnswer:
    """What a vendor holds (``found``), when it said so, and whether that answer was kept."""

    found: list[Discovered]
    asked_at: datetime
    kept: bool


@dataclass(frozen=True, slots=True)
class AddedFound:
    """What became of one discovered meter: ``added`` true, or kept/skipped with why in ``line``.

    ``about`` is ``meter`` for the meter itself, ``place`` for putting it in its vendor's place.
    """

    meter_id: str
    added: bool
    line: str
    about: str = "meter"


def add_discovered(store: Store, found: Iterable[Discovered]) -> list[AddedFound]:
    """Add discovered meters, keeping any whose id exists; return what became of each.

    A meter the vendor groups in a place goes into that place with its role; the place is
    created when missing and takes the vendor's tariff when it has none yet.
    """
    results: list[AddedFound] = []
    for item in found:
        results.extend(_add_found(store, item))
    return results


def _add_found(store: Store, item: Discovered) -> list[AddedFound]:
    results: list[AddedFound] = []
    problem = id_problem(item.suggested_id)
    if problem is not None:
        return [AddedFound(item.suggested_id, False, f"skipped a meter: {problem}")]
    try:
        check_options(item.options)
    except FieldError as exc:
        raise FieldError("options", f"discovered meter {item.suggested_id}: {exc}") from exc
    try:
        add_meter(
            store,
            item.suggested_id,
            item.vendor,
            phases=item.phases,
            tz=item.tz,
            name=item.name,
            options=dict(item.options),
        )
    except ConflictError:
        line = f"kept meter {item.suggested_id} (it exists already)"
        results.append(AddedFound(item.suggested_id, False, line))
    else:
        line = f"added meter {item.suggested_id} ({item.vendor}, {item.phases}-phase, {item.tz})"
        results.append(AddedFound(item.suggested_id, True, line))
    if item.place is not None:
        results.append(_place_found(store, item.suggested_id, item.tz, item.place))
    return results


def _place_found(store: Store, meter_id: str, meter_tz: str, found: DiscoveredPlace) -> AddedFound:
    """Put a discovered meter in its vendor's place, creating the place (and tariff) if missing."""
    role = Role(found.role)
    try:
        place = store.get_place(found.place_id)
    except NotFoundError:
        place = placebook.add_place(
            store, found.place_id, found.tz or meter_tz, found.name, tariff=found.tariff
        )
        tariff_note = ", with the vendor's tariff" if found.tariff else ""
        made = f"added place {place.id} ({place.tz}{tariff_note})"
    else:
        made = f"place {place.id}"
        if found.tariff and not place.tariff:
            placebook.set_tariff(store, place.id, found.tariff)
            made += " took the vendor's tariff"
    if dict(place.meters).get(meter_id) != role:
        placebook.attach_meter(store, place.id, meter_id, role)
    return AddedFound(meter_id, False, f"{made}: meter {meter_id} is its {role.value} meter", "place")
