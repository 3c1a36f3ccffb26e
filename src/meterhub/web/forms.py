"""Forms on the dashboard's pages: the CSRF check, the admin check, and errors shown by their field.

A page's form posts with the session's CSRF token in a hidden ``csrf_token`` field. The handler
calls the same domain function as the CLI and the API; an ``InputError`` (or another
``MeterhubError``) becomes a message next to the field it names, and the page is rendered again
with what the person typed, status 400. A change that worked redirects (303) to a page that says
so, so a reload never posts twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from meterhub.api.deps import CSRF_FIELD
from meterhub.api.websession import WebSession, same_token
from meterhub.model import UserRole

__all__ = ["FormErrors", "done", "form_text", "is_admin", "read_form"]


@dataclass
class FormErrors:
    """What went wrong with a submitted form: messages by field name, and one for the whole form."""

    fields: dict[str, str] = field(default_factory=dict)
    general: str | None = None

    def __bool__(self) -> bool:
        return bool(self.fields) or self.general is not None

    def add(self, name: str | None, message: str) -> None:
        """Keep a message for a field (None: for the form as a whole)."""
        if name is None:
            self.general = message
        else:
            self.fields.setdefault(name, message)


async def read_form(request: Request, session: WebSession) -> tuple[FormData, FormErrors]:
    """Read a posted form; its errors hold a general message when the CSRF token is wrong."""
    form = await request.form()
    errors = FormErrors()
    if not same_token(form_text(form, CSRF_FIELD) or None, session.csrf):
        errors.add(None, "The form expired or came from another page; reload the page and try again.")
    return form, errors


def form_text(form: FormData | Mapping[str, object], name: str) -> str:
    """Return a form field's text, stripped, '' when it is missing."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def is_admin(session: WebSession) -> bool:
    """Tell whether the signed-in user is an admin."""
    return session.principal.role is UserRole.ADMIN


def done(path: str, message: str) -> RedirectResponse:
    """Redirect after a change that worked, carrying a one-line notice for the next page."""
    separator = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{separator}done={quote(message, safe='')}", status_code=303)
