"""Refuse a NUL character in any path or query parameter, on every route and every backend.

No id, name or filter holds a NUL, and PostgreSQL cannot even compare one: such a request is
the client's mistake, answered 422 naming the parameter, before any route or store sees it.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from meterhub.store.text import NUL_MESSAGE

__all__ = ["reject_nul_parameters"]

_NUL = "\x00"


async def reject_nul_parameters(request: Request) -> None:
    """Raise the 422 validation problem when a path or query parameter holds a NUL."""
    errors = [
        {"loc": ("path", name), "msg": NUL_MESSAGE, "type": "value_error"}
        for name, value in request.path_params.items()
        if isinstance(value, str) and _NUL in value
    ]
    errors += [
        {"loc": ("query", name.replace(_NUL, "\\u0000")), "msg": NUL_MESSAGE, "type": "value_error"}
        for name, value in request.query_params.multi_items()
        if _NUL in name or _NUL in value
    ]
    if errors:
        raise RequestValidationError(errors)
