"""The simulated Intellimeter project: its settings, accounts, metering points and readings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from meterhub.errors import ConflictError, InputError, NotFoundError
from meterhub.vendors.physics import Household, SimClock, SiteConfig

from .accounts import AccountBook
from .graphics import PIXELS_PER_UNIT, ChartKind, draw_chart
from .payloads import EXPORT_COLUMNS, MeterPoint, SiteReadings, day_range
from .render import FILE_MEDIA_TYPES, render_file

__all__ = ["RENAMED_SUFFIX", "VARIANTS", "IntellimeterConfig", "IntellimeterSite"]

VARIANTS = {
    "renamed_point": "someone renamed the first metering point (POST /point): its rows now carry "
    "the name with '-renamed' appended; its id stays",
    "removed_point": "the first metering point was removed from the project: it is gone from "
    "/data, /interval, /file and /point",
}
"""The real-world variants the simulated project can switch on, with what each reproduces."""
RENAMED_SUFFIX = "-renamed"
"""What ``renamed_point`` appends to the first point's name."""
_FIRST_POINT_ID = 1

_LAST_DAY = timedelta(hours=24)
_BASE_LOADS_W = (420.0, 180.0, 950.0, 300.0)
_INITIAL_IMPORT_KWH = (28_540.24, 35_757.359, 12_004.5, 8_310.0)


@dataclass(frozen=True)
class IntellimeterConfig:
    """Settings of the simulated project: its site, its metering points, its first account."""

    start: datetime | None = None
    tz: str = "America/Toronto"
    latitude: float = 43.65
    longitude: float = -79.38
    meters: tuple[str, ...] = ("meter1", "meter2", "meter3")
    username: str = "test"
    password: str = "test"  # noqa: S105 - the simulator's documented demo login
    email: str = "test@example.com"
    project_id: int = 1
    project_name: str = "myProject"
    offline: tuple[tuple[datetime, datetime], ...] = ()
    resets: tuple[datetime, ...] = ()
    """Instants (aware) at which every point's register is reset to zero."""
    max_file_days: int = 31
    max_graphic_units: float = 40.0
    joined: datetime | None = None
    extra_users: tuple[tuple[str, str, str], ...] = ()
    """More accounts as (username, password, email)."""

    def site(self, seed: int, index: int) -> SiteConfig:
        """Return the physics of metering point ``index`` (0-based)."""
        return SiteConfig(
            seed=seed * 100 + index,
            phases=3 if index % 2 == 0 else 1,
            latitude=self.latitude,
            longitude=self.longitude,
            tz=self.tz,
            base_load_w=_BASE_LOADS_W[index % len(_BASE_LOADS_W)],
            offline=self.offline,
            resets=self.resets,
            initial_import_kwh=_INITIAL_IMPORT_KWH[index % len(_INITIAL_IMPORT_KWH)],
        )


class IntellimeterSite:
    """Everything the simulated service holds: clock, accounts, metering points, readings."""

    def __init__(self, config: IntellimeterConfig, seed: int, speed: float) -> None:
        self.config = config
        self.zone = ZoneInfo(config.tz)
        self.clock = SimClock(config.start, speed)
        self.book = AccountBook(seed, config.project_id, config.project_name)
        joined = config.joined or self.clock.now()
        users = ((config.username, config.password, config.email), *config.extra_users)
        for username, password, email in users:
            self.book.create(username, password, email, joined)
        self.points: dict[int, MeterPoint] = {}
        households: dict[int, Household] = {}
        for index, name in enumerate(config.meters):
            site = config.site(seed, index)
            point = MeterPoint(id=index + 1, name=name, phases=site.phases, modbus_id=index + 1)
            self.points[point.id] = point
            households[point.id] = Household(site)
        self.readings = SiteReadings(households, self.zone)
        self._renamed_from: str | None = None
        self._removed: MeterPoint | None = None

    def apply_variants(self, variant: Callable[[str], bool]) -> None:
        """Bring the first point in line with the variants switched on (before every answer)."""
        self._apply_rename(variant("renamed_point"))
        removed = variant("removed_point")
        if removed and self._removed is None and _FIRST_POINT_ID in self.points:
            self._removed = self.points.pop(_FIRST_POINT_ID)
        elif not removed and self._removed is not None:
            self.points[_FIRST_POINT_ID] = self._removed
            self.points = dict(sorted(self.points.items()))
            self._removed = None

    def _apply_rename(self, on: bool) -> None:
        point = self.points.get(_FIRST_POINT_ID) or self._removed
        if point is None:
            return
        if on and self._renamed_from is None:
            self._renamed_from = point.name
            self._set_name(point, point.name + RENAMED_SUFFIX)
        elif not on and self._renamed_from is not None:
            if point.name == self._renamed_from + RENAMED_SUFFIX:
                self._set_name(point, self._renamed_from)
            self._renamed_from = None

    def _set_name(self, point: MeterPoint, name: str) -> None:
        renamed = replace(point, name=name)
        if point.id in self.points:
            self.points[point.id] = renamed
        else:
            self._removed = renamed

    def find_point(self, params: Mapping[str, str]) -> MeterPoint:
        """Return the point named by ``id`` (preferred) or ``name``; raise if none matches."""
        if "id" in params:
            try:
                point_id = int(params["id"])
            except ValueError:
                raise InputError(f"id must be a whole number, not {params['id']!r}") from None
            if point_id in self.points:
                return self.points[point_id]
            raise NotFoundError(f"no metering point with id {point_id}")
        if "name" in params:
            return self.point_named(params["name"])
        raise InputError("give the metering point as id or name")

    def point_named(self, name: str) -> MeterPoint:
        """Return the point called ``name`` or raise NotFoundError."""
        for point in self.points.values():
            if point.name == name:
                return point
        raise NotFoundError(f"no metering point named {name!r}")

    def rename(self, point: MeterPoint, new_name: str) -> MeterPoint:
        """Rename ``point``; raise ConflictError if another point has that name."""
        if any(other.name == new_name and other.id != point.id for other in self.points.values()):
            raise ConflictError(f"a metering point is already named {new_name!r}")
        renamed = replace(point, name=new_name)
        self.points[point.id] = renamed
        return renamed

    def chart(self, params: Mapping[str, str]) -> bytes:
        """Draw the ``/graphics`` PNG of the last 24 hours as ``params`` ask."""
        kind_text = params.get("type", ChartKind.PIE.value)
        try:
            kind = ChartKind(kind_text)
        except ValueError:
            raise InputError(f"type must be pie, bar or line, not {kind_text!r}") from None
        width_px = self._pixels(params, "width", 16.0)
        height_px = self._pixels(params, "height", 9.0)
        points = list(self.points.values())
        if "meter" in params:
            points, kind = [self.point_named(params["meter"])], ChartKind.LINE
        end = self.clock.now()
        start = end - _LAST_DAY
        series = {point.name: self.readings.interval_series(point, start, end) for point in points}
        title = f"{self.config.project_name}: energy, last 24 hours"
        return draw_chart(kind, series, width_px, height_px, title)

    def _pixels(self, params: Mapping[str, str], name: str, default: float) -> int:
        text = params.get(name)
        try:
            units = default if text is None else float(text)
        except ValueError:
            raise InputError(f"{name} must be a number, not {text!r}") from None
        if not 0 < units <= self.config.max_graphic_units:
            limit = self.config.max_graphic_units
            raise InputError(f"{name} must be above 0 and at most {limit:g}, not {units:g}")
        return max(round(units * PIXELS_PER_UNIT), 1)

    def export(self, params: Mapping[str, str]) -> tuple[str, str, str]:
        """Return (body, media type, file name) of a ``/file`` export."""
        file_type = params.get("type", "csv")
        if file_type not in FILE_MEDIA_TYPES:
            raise InputError(f"type must be csv, json, xml or yaml, not {file_type!r}")
        first, second = _day_param(params, "start"), _day_param(params, "end")
        low, high = sorted((first, second))
        if (high - low).days + 1 > self.config.max_file_days:
            raise InputError(f"at most {self.config.max_file_days} days per file")
        start, end = day_range(low, high, self.zone)
        points = list(self.points.values())
        if "meter" in params:
            points = [self.point_named(params["meter"])]
        rows = self.readings.history_rows(points, start, min(end, self.clock.now()))
        name = f"intellimeter_{low.isoformat()}_{high.isoformat()}.{file_type}"
        return render_file(rows, EXPORT_COLUMNS, file_type), FILE_MEDIA_TYPES[file_type], name


def _day_param(params: Mapping[str, str], name: str) -> date:
    text = params.get(name)
    if text is None:
        raise InputError(f"{name} is mandatory (YYYY-mm-dd)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{name} must be a day as YYYY-mm-dd, not {text!r}") from None
