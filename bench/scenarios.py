"""The scenario registry, in the order the harness runs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.fixtures import Context
from bench.harness import Result
from bench.scenarios_api import api_rates
from bench.scenarios_cli import cli_readings_cold, cli_start
from bench.scenarios_dashboard import dashboard_year, live_latency
from bench.scenarios_import import import_csv
from bench.scenarios_ingest import ingest_backfill, ingest_poll_order
from bench.scenarios_latest import latest_all
from bench.scenarios_parse import parse_payloads
from bench.scenarios_pg import pg_year_reads
from bench.scenarios_poll import poll_many
from bench.scenarios_reads import downsample_year, energy_days_year, offline_year, power_stats_7d
from bench.scenarios_storage import storage
from bench.scenarios_workers import poll_workers

__all__ = ["SCENARIOS", "Scenario", "scenario_names"]


@dataclass(frozen=True, slots=True)
class Scenario:
    """One runnable unit and the result names it yields."""

    names: tuple[str, ...]
    run: Callable[[Context], list[Result]]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(("ingest_poll_order",), ingest_poll_order),
    Scenario(("ingest_backfill",), ingest_backfill),
    Scenario(("downsample_year",), downsample_year),
    Scenario(("energy_days_year",), energy_days_year),
    Scenario(("latest_all",), latest_all),
    Scenario(("power_stats_7d",), power_stats_7d),
    Scenario(("offline_year",), offline_year),
    Scenario(("dashboard_year", "dashboard_year_energy"), dashboard_year),
    Scenario(("parse_payloads",), parse_payloads),
    Scenario(("storage_bytes", "storage_rollup_share"), storage),
    Scenario(
        ("api_latest_rps", "api_latest_rps_uncached", "api_readings_rps", "api_readings_rps_uncached"),
        api_rates,
    ),
    Scenario(("poll_many",), poll_many),
    Scenario(("poll_workers",), poll_workers),
    Scenario(("live_latency",), live_latency),
    Scenario(("cli_start",), cli_start),
    Scenario(("cli_readings_cold",), cli_readings_cold),
    Scenario(("import_csv",), import_csv),
    Scenario(("pg_downsample_year", "pg_energy_days_year"), pg_year_reads),
)


def scenario_names() -> list[str]:
    """Return every result name, in run order."""
    return [name for scenario in SCENARIOS for name in scenario.names]
