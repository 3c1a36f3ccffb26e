"""Where each vendor's simulator lives; adding a vendor adds one line to :data:`SIMULATORS`.

The contract every simulator module honours::

    # meterhub/vendors/<vendor>/simulator.py
    def create_app(seed: int = 1, speed: float = 1.0, ...) -> ASGI app  # usually a Starlette

It is always called with keywords, ``create_app(seed=N, speed=F)``; further parameters must
have defaults. ``seed`` picks the deterministic household (``physics.SiteConfig.seed``), ``speed``
how many simulated seconds pass per real second. The app serves the vendor's API exactly as its
seed document shows, plus the ``/_sim/*`` control routes of :mod:`meterhub.vendors.simkit`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from meterhub.errors import InputError

__all__ = ["CONNECTORS", "SIMULATORS", "load_connector", "load_factory", "vendor_names"]

AppFactory = Callable[..., Any]

SIMULATORS: tuple[tuple[str, str], ...] = (
    ("iammeter", "meterhub.vendors.iammeter.simulator:create_app"),
    ("smartmac", "meterhub.vendors.smartmac.simulator:create_app"),
    ("intellimeter", "meterhub.vendors.intellimeter.simulator:create_app"),
    ("amsreader", "meterhub.vendors.amsreader.simulator:create_app"),
    ("umeter", "meterhub.vendors.umeter.simulator:create_app"),
)
"""Vendor name and ``module:function`` of its simulator factory, in display order."""


CONNECTORS: tuple[tuple[str, str], ...] = (
    ("iammeter", "meterhub.vendors.iammeter.connector:IammeterConnector"),
    ("smartmac", "meterhub.vendors.smartmac.connector:SmartmacConnector"),
    ("intellimeter", "meterhub.vendors.intellimeter.connector:IntellimeterConnector"),
    ("amsreader", "meterhub.vendors.amsreader.connector:AmsReaderConnector"),
    ("umeter", "meterhub.vendors.umeter.connector:UmeterConnector"),
)
"""Vendor name and ``module:class`` of its connector; a connector class is built as
``Class(meter, context)`` with a :class:`meterhub.model.Meter` and a
:class:`meterhub.vendors.base.ConnectorContext`."""


def vendor_names() -> tuple[str, ...]:
    """Return the names of the simulated vendors."""
    return tuple(name for name, _ in SIMULATORS)


def load_factory(vendor: str) -> AppFactory:
    """Import and return the simulator factory of ``vendor`` or raise InputError."""
    targets = dict(SIMULATORS)
    if vendor not in targets:
        known = ", ".join(vendor_names())
        raise InputError(f"unknown vendor {vendor!r}; choose one of {known} or all")
    module_name, _, attribute = targets[vendor].partition(":")
    try:
        factory: AppFactory = getattr(import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"the {vendor} simulator is not available: {exc}") from exc
    return factory


def load_connector(vendor: str) -> Callable[..., Any]:
    """Import and return the connector class of ``vendor`` or raise InputError."""
    targets = dict(CONNECTORS)
    if vendor not in targets:
        known = ", ".join(name for name, _ in CONNECTORS)
        raise InputError(f"no connector for vendor {vendor!r}; known vendors: {known}")
    module_name, _, attribute = targets[vendor].partition(":")
    try:
        connector: Callable[..., Any] = getattr(import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"the {vendor} connector is not available: {exc}") from exc
    return connector
