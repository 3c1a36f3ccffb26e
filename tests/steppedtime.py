"""Simulated time that moves only when the test moves it, for the hub and a simulator at once.

The simulator is frozen (``POST /_sim/clock {"speed": 0}``) and set to each instant the test
steps to; the hub runs on a :class:`SteppedClock` that reads the same instant. A call therefore
happens at the same simulated instant on both sides, however long it takes in real time, so
quota windows and timestamps agree exactly and days pass in seconds. Time moves to the next
thing due (a poll, a sleeper, a scripted event) once the hub is idle: nothing in flight except
tasks asleep on the clock.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import anyio
import anyio.abc
import anyio.lowlevel
import httpx

from meterhub.poller import Clock, Poller

__all__ = ["SteppedClock", "TimeDriver", "running", "stepped", "whole_second_after"]

_IDLE_POLL_S = 0.001
_CALM_CHECKS = 3
_SETTLE_TIMEOUT_S = 60.0
_STILL_REAL_S = 3600.0


def whole_second_after(ts: datetime) -> datetime:
    """Return ``ts`` rounded up to a whole second (devices stamp answers in whole seconds)."""
    whole_s = math.ceil(ts.timestamp())
    return ts + timedelta(seconds=whole_s - ts.timestamp())


class SteppedClock(Clock):
    """A hub clock that stands still until :meth:`set` moves it; sleepers wake when it passes."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self._now = start
        self._sleepers: list[tuple[datetime, anyio.Event]] = []

    def now(self) -> datetime:
        """Return the current stepped instant."""
        return self._now

    def real_s(self, clock_s: float) -> float:
        """Return a long real wait: this clock moves only when set, and wakes its waiters then."""
        return _STILL_REAL_S

    async def sleep(self, clock_s: float) -> None:
        """Sleep until the clock has been set ``clock_s`` seconds further."""
        event = anyio.Event()
        self._sleepers.append((self._now + timedelta(seconds=max(0.0, clock_s)), event))
        await event.wait()

    @property
    def sleeping(self) -> int:
        """Return how many tasks wait for the clock."""
        return len(self._sleepers)

    @property
    def next_wake(self) -> datetime | None:
        """Return the earliest instant a sleeper waits for."""
        return min((at for at, _ in self._sleepers), default=None)

    def set(self, now: datetime) -> None:
        """Move to ``now`` (never back) and wake the sleepers whose time has come."""
        if now < self._now:
            raise ValueError(f"the clock cannot go back from {self._now} to {now}")
        self._now = now
        due = [(at, event) for at, event in self._sleepers if at <= now]
        self._sleepers = [(at, event) for at, event in self._sleepers if at > now]
        for _, event in due:
            event.set()


Event = tuple[datetime, Callable[[], Awaitable[None]]]
"""A scripted action and the simulated instant it happens at."""


class TimeDriver:
    """Steps a frozen simulator and a :class:`SteppedClock` together, from one thing due to the next."""

    def __init__(self, clock: SteppedClock, *controls: httpx.AsyncClient) -> None:
        """Drive ``clock`` and the simulators behind ``controls`` (clients on their base URLs)."""
        self.clock = clock
        self._controls = controls
        self.poller: Poller | None = None
        self.steps = 0

    async def freeze(self) -> None:
        """Stop the simulators' clocks at the hub clock's instant."""
        await self._set_simulator(self.clock.now())

    async def _set_simulator(self, now: datetime) -> None:
        for control in self._controls:
            answer = await control.post("/_sim/clock", json={"now": now.isoformat(), "speed": 0})
            answer.raise_for_status()

    async def step_to(self, now: datetime) -> None:
        """Move both clocks to ``now`` and let the poller look at its schedule."""
        await self._set_simulator(now)
        self.clock.set(now)
        self.steps += 1
        if self.poller is not None:
            self.poller.wake()

    def _idle(self) -> bool:
        poller = self.poller
        if poller is None:
            return True
        due = poller.next_due
        if due is not None and due <= self.clock.now():
            return False
        return poller.in_flight == self.clock.sleeping

    async def settle(self) -> None:
        """Return once the hub is idle: nothing due now, nothing in flight but sleepers."""
        with anyio.fail_after(_SETTLE_TIMEOUT_S):
            while True:
                calm = 0
                while self._idle() and calm < _CALM_CHECKS:  # tasks just woken run first
                    calm += 1
                    await anyio.lowlevel.checkpoint()
                if calm == _CALM_CHECKS:
                    return
                await anyio.sleep(_IDLE_POLL_S)

    def _next_instant(self, until: datetime, events: list[Event]) -> datetime:
        candidates = [until, *(at for at, _ in events[:1])]
        if self.poller is not None and self.poller.next_due is not None:
            candidates.append(whole_second_after(self.poller.next_due))
        if self.clock.next_wake is not None:
            candidates.append(whole_second_after(self.clock.next_wake))
        return max(self.clock.now(), min(candidates))

    async def run_until(self, until: datetime, events: list[Event] | None = None) -> None:
        """Step through [now, until], running each scripted event at its instant."""
        pending = sorted(events or [], key=lambda event: event[0])
        while True:
            await self.settle()
            while pending and pending[0][0] <= self.clock.now():
                _, action = pending.pop(0)
                await action()
                await self.settle()
            if self.clock.now() >= until:
                return
            await self.step_to(self._next_instant(until, pending))

    async def step(self, until: datetime | None = None) -> None:
        """Let the hub settle, then move to the next thing due (a poll or a sleeper), or ``until``."""
        await self.settle()
        wakes = [self.clock.next_wake, until]
        if self.poller is not None:
            wakes.append(self.poller.next_due)
        due = [whole_second_after(at) for at in wakes if at is not None]
        if not due:
            raise AssertionError("nothing is due: stepping would never end")
        await self.step_to(max(self.clock.now(), min(due)))

    async def run_until_true(self, check: Callable[[], object], what: str, max_steps: int = 10_000) -> None:
        """Step from one thing due to the next until ``check()`` holds; fail after ``max_steps``."""
        await self.settle()
        for _ in range(max_steps):
            if check():
                return
            await self.step()
            await self.settle()
        if not check():
            raise AssertionError(f"{what} did not happen within {max_steps} steps of simulated time")

    async def run_while(self, work: Awaitable[object]) -> None:
        """Await ``work``, moving time on whenever it only waits for the clock."""
        finished = anyio.Event()

        async def do_work() -> None:
            try:
                await work
            finally:
                finished.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(do_work)
            while not finished.is_set():
                await anyio.sleep(_IDLE_POLL_S)
                wake = self.clock.next_wake
                if wake is not None and not finished.is_set():
                    await self.step_to(whole_second_after(wake))


@asynccontextmanager
async def stepped(start: datetime, *base_urls: str) -> AsyncIterator[tuple[TimeDriver, httpx.AsyncClient]]:
    """Freeze the simulators at ``base_urls`` at ``start``; yield their driver and a hub client."""
    async with httpx.AsyncClient(timeout=_SETTLE_TIMEOUT_S) as client:
        controls = [httpx.AsyncClient(base_url=url, timeout=_SETTLE_TIMEOUT_S) for url in base_urls]
        try:
            driver = TimeDriver(SteppedClock(start), *controls)
            await driver.freeze()
            yield driver, client
        finally:
            for control in controls:
                await control.aclose()


@asynccontextmanager
async def frozen(
    base_url: str, start: datetime
) -> AsyncIterator[tuple[TimeDriver, httpx.AsyncClient, anyio.abc.TaskGroup]]:
    """Freeze the simulator at ``base_url`` at ``start``; yield its driver, control and a task group."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=10) as control,
        anyio.create_task_group() as tasks,
    ):
        driver = TimeDriver(SteppedClock(start), control)
        await driver.freeze()
        yield driver, control, tasks


@asynccontextmanager
async def running(poller: Poller, driver: TimeDriver) -> AsyncIterator[Poller]:
    """Run ``poller`` on the driver's clock for the body of the block, then stop it.

    Give the poller its meters (``meters=``): one that reads them again every minute sleeps on the
    clock outside any poll, and the driver could not tell when the hub is idle.
    """
    await poller.load_meters()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(poller.run)
        driver.poller = poller
        try:
            yield poller
            await driver.settle()
        finally:
            driver.poller = None
            tasks.cancel_scope.cancel()
