"""Backfills asked for by a person: the job a range gives, and runs of it inside the hub.

:func:`plan_backfill` turns a meter and a range into the job ``meterhub backfill`` would run,
resuming what an earlier job of the meter stored. :class:`BackfillRuns` runs such jobs in a
task group of the hub's process, one per meter at a time, through
:func:`~meterhub.poller.backfill.backfill_meter`, keeping each run's progress and telling
whoever waits on :meth:`BackfillRuns.wait_change` each time a window is stored. Progress is also
persisted in the store after every window, so a run cut short resumes where it stopped.
All times are aware UTC.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import anyio
import anyio.abc
import httpx

from meterhub.catalog import FieldError
from meterhub.errors import ConflictError, InputError, MeterhubError
from meterhub.model import VENDOR_FILE, Meter
from meterhub.poller.backfill import BackfillJob, BackfillLedger, backfill_meter, resume
from meterhub.redact import redact_text
from meterhub.store.base import Store
from meterhub.timeutil import parse_time
from meterhub.vendors.registry import load_connector

__all__ = [
    "BackfillRun",
    "BackfillRuns",
    "backfill_range",
    "check_keeps_history",
    "plan_backfill",
]

log = logging.getLogger(__name__)

RUNNING, DONE, FAILED = "running", "done", "failed"


def _instant(text: str, tz: str, field: str, now: datetime) -> datetime:
    try:
        return parse_time(text, tz, now)
    except InputError as exc:
        raise FieldError(field, str(exc)) from exc


def check_keeps_history(meter: Meter) -> None:
    """Raise InputError, saying so at once, when the meter's vendor keeps no history to fetch.

    A smart-MAC device answers only with its present values: a backfill would walk every window
    of the range and store nothing.
    """
    if meter.vendor == VENDOR_FILE:
        raise InputError(f"meter {meter.id!r} is fed by imports; there is no vendor to backfill from")
    if not getattr(load_connector(meter.vendor), "keeps_history", True):
        raise InputError(
            f"meter {meter.id!r} ({meter.vendor}): the device keeps no history, so there is nothing "
            "to backfill; its readings are collected by polling, from when it was added"
        )


def backfill_range(meter: Meter, since: str, until: str, now: datetime) -> tuple[datetime, datetime]:
    """Return the range [since, until) asked for, read in the meter's zone; until is never after now.

    Raise InputError when the meter's vendor keeps no history (:func:`check_keeps_history`), and
    FieldError (``since`` or ``until``) for a time that cannot be read or an empty range.
    """
    start = _instant(since, meter.tz, "since", now)
    end = min(_instant(until, meter.tz, "until", now), now) if until.strip() else now
    if end <= start:
        raise FieldError(
            "since", f"the start ({start.isoformat()}) must be before the end ({end.isoformat()})"
        )
    check_keeps_history(meter)
    return start, end


async def plan_backfill(
    store: Store, meter: Meter, since: str, until: str, now: datetime, *, restart: bool = False
) -> BackfillJob:
    """Return the job for ``meter`` from ``since`` to ``until`` (empty: now), read in its zone.

    The end is never after ``now``. Unless ``restart``, what an earlier job stored is counted
    as done. Raise FieldError (``since`` or ``until``) for a time that cannot be read or a
    range that is empty.
    """
    start, end = backfill_range(meter, since, until, now)
    existing = None if restart else await BackfillLedger(store).load(meter.id)
    return resume(existing, meter.id, start, end)


@dataclass(slots=True)
class BackfillRun:
    """One backfill run of a meter: [start, end), stored up to ``done_until``."""

    meter_id: str
    start: datetime
    end: datetime
    done_until: datetime
    state: str = RUNNING
    """``running``, ``done`` or ``failed``."""
    message: str = ""

    @property
    def percent_done(self) -> float:
        """Return how much of the range is stored, 0 to 100."""
        total_s = (self.end - self.start).total_seconds()
        if total_s <= 0:
            return 100.0
        done_s = (min(self.done_until, self.end) - self.start).total_seconds()
        return round(max(0.0, min(100.0, 100.0 * done_s / total_s)), 1)

    def to_json(self) -> dict[str, object]:
        """Return the run as JSON-ready data."""
        return {
            "meter": self.meter_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "done_until": self.done_until.isoformat(),
            "percent_done": self.percent_done,
            "state": self.state,
            "message": self.message,
        }


class BackfillRuns:
    """Backfill runs in a task group of the hub's process, one per meter at a time."""

    def __init__(self, client: httpx.AsyncClient, task_group: anyio.abc.TaskGroup) -> None:
        self._client = client
        self._task_group = task_group
        self._runs: dict[str, BackfillRun] = {}
        self._version = 0
        self._changed = anyio.Event()

    @property
    def version(self) -> int:
        """Return a number that grows with every change of any run."""
        return self._version

    def runs(self) -> list[BackfillRun]:
        """Return the runs since the hub started, newest meter id order."""
        return [self._runs[key] for key in sorted(self._runs)]

    def start(self, store: Store, meter: Meter, job: BackfillJob) -> BackfillRun:
        """Start fetching the rest of ``job``; raise ConflictError while the meter's run is running."""
        current = self._runs.get(meter.id)
        if current is not None and current.state == RUNNING:
            raise ConflictError(f"a backfill of meter {meter.id!r} is running already")
        run = BackfillRun(meter.id, job.start, job.end, job.done_until)
        self._runs[meter.id] = run
        self._task_group.start_soon(self._run, store, meter, job, run)
        self._touch()
        return run

    async def wait_change(self, seen: int) -> int:
        """Return the version once it differs from ``seen`` (at once, when it does already)."""
        while self._version == seen:
            await self._changed.wait()
        return self._version

    def _touch(self) -> None:
        self._version += 1
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def _run(self, store: Store, meter: Meter, job: BackfillJob, run: BackfillRun) -> None:
        async def progress(done: BackfillJob) -> None:
            run.done_until = done.done_until
            run.message = ""
            self._touch()

        async def wait_quota(seconds: float) -> None:
            run.message = f"waiting {seconds:.0f} s for the vendor's quota"
            self._touch()
            await anyio.sleep(seconds)

        try:
            _, stored = await backfill_meter(
                store, self._client, meter, job, on_progress=progress, wait_quota=wait_quota
            )
        except MeterhubError as exc:
            run.state = FAILED
            run.message = f"{redact_text(str(exc))}; progress is saved: start it again to resume"
        except Exception:  # a bug must not take the hub's task group down with it
            log.exception("the backfill of meter %s failed", meter.id)
            run.state = FAILED
            run.message = "the backfill failed unexpectedly; see the hub's log"
        else:
            run.state = DONE
            run.done_until = run.end
            run.message = (
                f"stored {stored.readings} readings, {stored.intervals} intervals "
                f"({stored.duplicates} readings already there)"
            )
        finally:
            self._touch()
