"""Real load data bundled with meterhub, and readers that turn it into readings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

from meterhub.errors import ImportFileError
from meterhub.model import Reading
from meterhub.timeutil import get_zone

__all__ = ["UCI_HOUSEHOLD", "uci_readings"]

UCI_HOUSEHOLD = "uci_household_2007-02-01_02.txt"
"""Two days of one-minute rows from the UCI household power data set (Sceaux, France)."""


def bundled(name: str) -> Path:
    """Return the path of a bundled data file."""
    return Path(str(resources.files("meterhub.datasets").joinpath(name)))


def _parse_time(text: str, zone_name: str) -> datetime:
    for layout in ("%d/%m/%Y;%H:%M:%S", "%d/%m/%Y %H:%M:%S"):
        try:
            naive = datetime.strptime(text, layout)  # noqa: DTZ007 - the zone is attached next
        except ValueError:
            continue
        return naive.replace(tzinfo=get_zone(zone_name))
    raise ImportFileError(f"cannot read UCI time {text!r}")


def uci_readings(
    path: Path, meter_id: str, tz: str = "Europe/Paris", start_kwh: float = 0.0
) -> Iterator[Reading]:
    """Yield one reading a minute; the import register integrates the minute powers.

    Each row's power is the mean of the minute that starts at its time, so the register at a
    row holds the energy of all earlier minutes; a last reading, one minute after the last row,
    carries only the register at the end of the trace, so the last minute's energy is known
    too. Rows marked ``?`` (missing) are skipped and leave a gap.
    """
    register_kwh = start_kwh
    last_ts: datetime | None = None
    with path.open(encoding="utf-8") as lines:
        header = next(lines, "")
        semicolons = header.count(";") >= 8
        for line in lines:
            fields = line.strip().split(";" if semicolons else ",")
            stamp = ";".join(fields[:2]) if semicolons else fields[0]
            values = fields[2:] if semicolons else fields[1:]
            if not values or "?" in values[:4]:
                continue
            power_kw, reactive_kw, voltage_v, current_a = (float(v) for v in values[:4])
            yield Reading(
                meter_id,
                _parse_time(stamp, tz).astimezone(get_zone("UTC")),
                0,
                voltage_v=voltage_v,
                current_a=current_a,
                power_w=power_kw * 1000,
                reactive_power_var=reactive_kw * 1000,
                energy_import_kwh=round(register_kwh, 6),
            )
            register_kwh += power_kw / 60
            last_ts = _parse_time(stamp, tz)
    if last_ts is not None:
        end = (last_ts + timedelta(minutes=1)).astimezone(get_zone("UTC"))
        yield Reading(meter_id, end, 0, energy_import_kwh=round(register_kwh, 6))
