"""The tariff form of a place's manage page: each field with its label and a one-line explanation.

The form's field names are the tariff's settings (as in ``PUT /api/v1/places/{id}/tariff``), so a
:class:`~meterhub.placebook.FieldError` lands next to the field it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meterhub.analytics.tariffs import Tariff
from meterhub.model import Role

__all__ = ["ROLE_WORDS", "TARIFF_GROUPS", "TariffField", "tariff_values"]


@dataclass(frozen=True, slots=True)
class TariffField:
    """One field of the tariff form: its setting, its label, what it means, and how it is typed."""

    name: str
    label: str
    hint: str
    kind: str = "number"
    """number, text, hours, whole (a count), days (weekdays or all), or list (numbers and commas)."""


TARIFF_GROUPS: tuple[tuple[str, str, tuple[TariffField, ...]], ...] = (
    (
        "Currency",
        "Every price and fee below is in this currency.",
        (
            TariffField(
                "currency",
                "Currency",
                "Three letters, such as EUR or NOK; needed once any price or fee is set.",
                "text",
            ),
        ),
    ),
    (
        "Import: one way only",
        "Fill in a flat price, or the two time-of-use prices, or a price series; leave the others empty.",
        (
            TariffField(
                "import_per_kwh",
                "Flat import price per kWh",
                "The same price for every kWh taken from the grid.",
            ),
            TariffField(
                "peak_per_kwh", "Peak price per kWh", "Time of use: the price inside the peak hours."
            ),
            TariffField(
                "offpeak_per_kwh", "Off-peak price per kWh", "Time of use: the price outside the peak hours."
            ),
            TariffField(
                "peak_start_hour",
                "Peak starts at hour",
                "Local hour the peak begins, 0 to 23 (7 means 07:00).",
                "hours",
            ),
            TariffField(
                "peak_end_hour",
                "Peak ends at hour",
                "Local hour the peak ends, 1 to 24 (24 means midnight).",
                "hours",
            ),
            TariffField(
                "peak_weekdays_only",
                "Peak on",
                "Weekdays only: Saturday and Sunday are off-peak all day.",
                "days",
            ),
            TariffField(
                "import_series",
                "Day-ahead price series",
                "Name of an imported price series (meterhub prices import) priced per slot.",
                "text",
            ),
            TariffField(
                "import_adder_per_kwh",
                "Import adder per kWh",
                "Added to every import price, such as a grid fee or a margin; may be negative.",
            ),
        ),
    ),
    (
        "Export",
        "What each kWh sent to the grid earns: a flat price or a series, or leave both empty for nothing.",
        (
            TariffField(
                "export_per_kwh",
                "Flat export price per kWh",
                "The same compensation for every kWh sent to the grid.",
            ),
            TariffField(
                "export_series",
                "Export price series",
                "Name of an imported price series that prices export per slot.",
                "text",
            ),
            TariffField(
                "export_adder_per_kwh",
                "Export adder per kWh",
                "Added to every export price; may be negative.",
            ),
        ),
    ),
    (
        "Fees",
        "Fixed amounts, whatever the energy.",
        (
            TariffField("fee_per_day", "Fee per day", "Charged for every local day."),
            TariffField("fee_per_month", "Fee per month", "Charged for every local month."),
        ),
    ),
    (
        "Capacity",
        "A capacity tariff prices the month's highest hours; leave empty when there is none.",
        (
            TariffField(
                "capacity_thresholds_kwh",
                "Capacity thresholds in kWh",
                "Steps of hourly energy, increasing and separated by commas, such as 5,10,15.",
                "list",
            ),
            TariffField(
                "capacity_peak_days",
                "Number of peak days",
                "How many of the month's highest days (one hour each) are averaged, 1 to 31.",
                "whole",
            ),
        ),
    ),
)
"""The tariff form's fields, in groups with a heading and a line about the group."""

ROLE_WORDS: dict[Role, str] = {
    Role.GRID: "grid connection (import and export)",
    Role.SOLAR: "yield (solar production)",
    Role.SPECIAL: "special load (such as a heat pump or a charger)",
    Role.CONSUMPTION: "consumption (a load inside the place)",
}
"""What each role of a meter in a place means, as the pages say it."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "weekdays" if value else "all"
    if isinstance(value, (list, tuple)):
        return ",".join(f"{v:g}" for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def tariff_values(tariff: Mapping[str, Any]) -> dict[str, str]:
    """Return a kept tariff as the form's field texts (defaults filled in, unset fields empty)."""
    full = Tariff.from_data(tariff)
    texts = {name: _text(getattr(full, name)) for name in full.__dataclass_fields__}
    for name in ("import_adder_per_kwh", "export_adder_per_kwh", "fee_per_day", "fee_per_month"):
        if name not in tariff:
            texts[name] = ""
    return texts
