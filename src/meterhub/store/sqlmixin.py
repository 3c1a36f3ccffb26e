"""The query plumbing the catalog and accounts mixins share: placeholders, the NUL rule, rows.

Both mixins write their SQL with ``?`` placeholders; a backend whose driver wants another sets
``_PLACEHOLDER``. Every argument passes :func:`~meterhub.store.text.reject_nul` first, so text
with a NUL is the user's input error on every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from meterhub.store.text import reject_nul

__all__ = ["SqlMixin"]

T = TypeVar("T")


class SqlMixin(ABC):
    """Run ``?``-placeholder SQL on a backend's connections, refusing NUL in any argument."""

    _PLACEHOLDER: ClassVar[str] = "?"

    @abstractmethod
    def _catalog_write(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(conn)`` in a write transaction (supplied by the backend)."""

    @abstractmethod
    def _catalog_read(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(conn)`` on a read connection (supplied by the backend)."""

    def _exec(self, conn: Any, sql: str, args: Sequence[Any] = ()) -> Any:
        reject_nul(*args)
        text = sql if self._PLACEHOLDER == "?" else sql.replace("?", self._PLACEHOLDER)
        return conn.execute(text, tuple(args))

    def _rows(self, conn: Any, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._exec(conn, sql, args).fetchall()]
