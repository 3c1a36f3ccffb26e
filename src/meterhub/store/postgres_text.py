"""How the PostgreSQL backend sends text: every string and JSON value is checked for NUL first.

PostgreSQL refuses NUL in text and JSONB, and psycopg reports that as a database error, which
would read as an outage. These adapters turn it into the user's input error at the one place
every parameter passes, for every query, COPY and JSON document the store sends.
"""

from __future__ import annotations

import json
from typing import Any

from psycopg import adapters as default_adapters
from psycopg.adapt import AdaptersMap
from psycopg.types.json import set_json_dumps
from psycopg.types.string import StrBinaryDumper, StrDumperUnknown

from meterhub.store.text import reject_nul

__all__ = ["TEXT_CHECKED_ADAPTERS"]


class _CheckedStrDumper(StrDumperUnknown):
    def dump(self, obj: str) -> bytes | bytearray | memoryview | None:
        reject_nul(obj)
        return super().dump(obj)


class _CheckedStrBinaryDumper(StrBinaryDumper):
    def dump(self, obj: str) -> bytes | bytearray | memoryview | None:
        reject_nul(obj)
        return super().dump(obj)


def _checked_json_dumps(obj: Any) -> str:
    reject_nul(obj)
    return json.dumps(obj)


def _adapters() -> AdaptersMap:
    chosen = AdaptersMap(default_adapters)
    chosen.register_dumper(str, _CheckedStrBinaryDumper)
    chosen.register_dumper(str, _CheckedStrDumper)  # last registered: the default for ``%s``
    set_json_dumps(_checked_json_dumps, chosen)
    return chosen


TEXT_CHECKED_ADAPTERS = _adapters()
"""Adapters for every connection of the PostgreSQL store (``context=`` of ``connect``)."""
