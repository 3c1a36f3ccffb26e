"""Wait for a condition under a generous deadline, instead of sleeping and hoping.

A busy machine makes a condition take longer to hold, never makes it false: so tests wait for
what they need (a row stored, a process gone, a message handled) and fail only when it has not
happened by a deadline far beyond any plausible delay, saying what was awaited.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable

import anyio

__all__ = ["DEADLINE_S", "wait_until", "wait_until_async"]

DEADLINE_S = 60.0
"""How long a condition may take to hold before the test fails: minutes of margin on a busy box."""
_PAUSE_S = 0.01
_LONGEST_PAUSE_S = 0.2


def wait_until(predicate: Callable[[], object], what: str, timeout_s: float = DEADLINE_S) -> None:
    """Return once ``predicate()`` is truthy; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    pause_s = _PAUSE_S
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout_s:g} s for {what}, in vain")
        time.sleep(pause_s)  # a pause between looks at the condition, never the synchronisation
        pause_s = min(pause_s * 2, _LONGEST_PAUSE_S)


async def wait_until_async(predicate: Callable[[], object], what: str, timeout_s: float = DEADLINE_S) -> None:
    """Return once ``predicate()`` (awaited if it is a coroutine) is truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    pause_s = _PAUSE_S
    while not await _value(predicate()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout_s:g} s for {what}, in vain")
        await anyio.sleep(pause_s)  # a pause between looks at the condition
        pause_s = min(pause_s * 2, _LONGEST_PAUSE_S)


async def _value(result: object) -> object:
    return await result if inspect.isawaitable(result) else result
