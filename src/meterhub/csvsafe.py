"""Keep text cells of the CSV the hub writes from running as spreadsheet formulas.

A spreadsheet treats a cell starting with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab or
carriage return) as a formula, so a meter name such as ``=HYPERLINK("http://x")`` would run
when an export is opened. Following OWASP's CSV-injection guidance, such a text cell is written
with a leading ``'``. Numbers are left as they are (a negative power stays ``-250.0``), and ids
never start with these characters, so an exported file still imports unchanged.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FORMULA_LEADS", "safe_cell", "safe_text"]

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula."""


def safe_text(text: str) -> str:
    """Return ``text`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_LEADS) else text


def safe_cell(value: Any) -> Any:
    """Return a CSV cell value: text neutralised by :func:`safe_text`, anything else unchanged."""
    return safe_text(value) if isinstance(value, str) else value
