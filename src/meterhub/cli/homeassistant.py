"""``meterhub homeassistant``: show, publish and remove the meters' Home Assistant MQTT discovery.

The settings come from the ``[homeassistant]`` section of the ``meterhub.toml`` given with
``--config`` (without one: the broker on 127.0.0.1:1883, prefixes ``homeassistant`` and
``meterhub``, every meter). ``meterhub serve --config`` publishes continuously by itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from meterhub.cli.common import emit, format_option, opened_store

__all__ = ["homeassistant"]

_config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A meterhub.toml with a [homeassistant] section (default: the local broker, every meter).",
)


def _settings(config_file: Path | None) -> Any:
    from meterhub.errors import ConfigError
    from meterhub.homeassistant.settings import HomeAssistantSettings
    from meterhub.poller.config import load_config

    if config_file is None:
        return HomeAssistantSettings()
    found = load_config(config_file).homeassistant
    if found is None:
        raise ConfigError(
            f"{config_file} has no [homeassistant] section; add one with at least broker = "
            '"mqtt://HOST:1883" (see the README, Home Assistant)'
        )
    return found


@click.group()
def homeassistant() -> None:
    """Publish meters to Home Assistant over MQTT discovery: show, publish, unpublish."""


@homeassistant.command("show")
@_config_option
@click.option("--meter", "meter_ids", multiple=True, help="Only this meter (repeatable).")
@format_option
@click.option("--messages", is_flag=True, help="Print the MQTT messages (topic and payload) as JSON.")
def show(config_file: Path | None, meter_ids: tuple[str, ...], fmt: str, messages: bool) -> None:
    """Show the entities each published meter has in Home Assistant, with their values now."""
    from meterhub.homeassistant.discovery import ENTITIES, meter_slug, present_keys, state_document
    from meterhub.homeassistant.publisher import messages_of
    from meterhub.meternow import MeterNowCache
    from meterhub.model import utc_now

    settings = _settings(config_file)
    with opened_store() as store:
        for meter_id in meter_ids:
            store.get_meter(meter_id)  # an unknown id is an error, not an empty answer
        meters = MeterNowCache(store).meters_now(utc_now(), list(meter_ids) or None)
    meters = [item for item in meters if settings.publishes(item.meter.id)]
    if messages:
        records = [
            {"topic": message.topic, "retain": True, "payload": _payload(message.payload)}
            for message in messages_of(settings, meters)
        ]
        sys.stdout.write(json.dumps(records, indent=2, ensure_ascii=False) + "\n")
        return
    rows = []
    for item in meters:
        keys = present_keys(item)
        values = state_document(item, keys)
        slug = meter_slug(item.meter.id)
        for entity in ENTITIES:
            if entity.key not in keys:
                continue
            value = values.get(entity.state_key)
            if entity.component == "binary_sensor":
                value = "ON" if value else "OFF"
            rows.append(
                (
                    item.meter.id,
                    f"{settings.node_id}_{slug}_{entity.key}",
                    entity.component,
                    entity.device_class,
                    entity.state_class,
                    entity.unit,
                    value,
                )
            )
    columns = ("meter", "unique_id", "component", "device_class", "state_class", "unit", "value")
    emit(columns, rows, fmt, title="Home Assistant entities")


def _payload(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@homeassistant.command("publish")
@_config_option
@click.option("--once", is_flag=True, help="Publish every meter once and exit (else: until Ctrl-C).")
def publish(config_file: Path | None, once: bool) -> None:
    """Publish every meter's discovery configs and state to the broker; follow new readings."""
    import anyio

    from meterhub.homeassistant.publisher import HomeAssistantPublisher

    settings = _settings(config_file)
    where = f"{settings.host}:{settings.port}"
    with opened_store() as store:
        from meterhub.poller.work import default_worker_id

        # Running on, it takes the publishing lease as a hub would: it stands by while a
        # running ``meterhub serve`` publishes to the same broker and node id.
        worker = None if once else f"{default_worker_id()}-homeassistant"
        publisher = HomeAssistantPublisher(store, settings, worker=worker)
        if once:
            count = _run_broker(lambda: publisher.publish_once(), where)
            meters = len(publisher.published_meters)
            click.echo(f"published {count} messages for {meters} meters to {where}")
            return
        from meterhub.cli.serve import configure_logging
        from meterhub.poller.hub import stop_on_signals

        configure_logging(verbose=True)  # say when it stands by for another publisher

        async def main() -> None:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(stop_on_signals, publisher.stop)
                await publisher.run()
                task_group.cancel_scope.cancel()

        click.echo(f"publishing to Home Assistant on {where}; stop with Ctrl-C")
        anyio.run(main)
        click.echo("stopped publishing; the hub's status topic says offline")


@homeassistant.command("unpublish")
@_config_option
def unpublish(config_file: Path | None) -> None:
    """Remove every entity this hub published from Home Assistant (empty retained configs)."""
    from meterhub.homeassistant.publisher import HomeAssistantPublisher

    settings = _settings(config_file)
    where = f"{settings.host}:{settings.port}"
    with opened_store() as store:
        publisher = HomeAssistantPublisher(store, settings)
        count = _run_broker(lambda: publisher.unpublish(), where)
    click.echo(f"cleared {count} retained topics on {where}; Home Assistant removes the entities")


def _run_broker(action: Any, where: str) -> int:
    """Run one broker action; a broker that cannot be reached is a one-line error."""
    import aiomqtt
    import anyio

    from meterhub.errors import ConfigError

    async def main() -> int:
        result: int = await action()
        return result

    try:
        return anyio.run(main)
    except aiomqtt.MqttError as exc:
        raise ConfigError(f"cannot publish to the MQTT broker at {where}: {exc}") from exc
    except TimeoutError as exc:
        raise ConfigError(f"the MQTT broker at {where} did not answer in time") from exc
