"""The Mosquitto the MQTT tests publish to and subscribe from, and ports and topics of their own."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

BROKER_HOST = "127.0.0.1"
BROKER_PORT = 1883


def require_broker() -> None:
    """Return when Mosquitto listens on the test broker's port; fail on CI, skip elsewhere."""
    try:
        with socket.create_connection((BROKER_HOST, BROKER_PORT), timeout=2):
            return
    except OSError as exc:
        reason = f"no MQTT broker at {BROKER_HOST}:{BROKER_PORT} ({exc})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must provide Mosquitto")
    pytest.skip(reason)


def unique_topic() -> str:
    """Return a topic no other test publishes to."""
    return f"meterhub-test/{uuid.uuid4().hex}"


def free_port() -> int:
    """Return a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind((BROKER_HOST, 0))
        return int(probe.getsockname()[1])
