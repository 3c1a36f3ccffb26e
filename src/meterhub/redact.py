"""Hide the secrets of database connection strings wherever one is shown: output, logs, errors.

libpq takes secrets in three places: the password of a URL's ``user:password@``, query
parameters of a URL (``?password=``, ``?sslpassword=``, PostgreSQL 18's
``?oauth_client_secret=``; libpq decodes ``%XX`` in names too, so ``?pass%77ord=`` counts), and
``keyword=value`` pairs (``host=db password='a b'``). Every parameter whose name holds
``password`` or ``secret`` is treated as a secret; paths such as ``sslkey`` or ``passfile`` are
not. Redaction never parses strictly: a string too broken to parse loses more, never less.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote

__all__ = ["MASK", "RedactingFormatter", "backend_kind", "redact_text", "redact_url"]

MASK = "***"
_SECRET_WORDS = ("password", "secret")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# A keyword=value pair whose keyword names a secret; its value is quoted (to the closing quote,
# or to the end when the quote is never closed) or runs to the next space.
_KEYWORD = r"\b[\w.-]*(?:password|secret)[\w.-]*\s*=\s*"
_VALUE = r"(?:'(?:[^'\\]|\\.)*(?:'|$)|\S*)"
_KEYWORD_RE = re.compile(rf"({_KEYWORD}){_VALUE}", re.IGNORECASE)
# In free text a URL ends at a space, unless its user info ("user:...@") runs on past one: a
# password with a space must not end the URL halfway through it.
_URL_OR_KEYWORD_RE = re.compile(
    rf"(?P<url>[A-Za-z][A-Za-z0-9+.-]*://(?:[^\s@/]*:[^@\n]*@)?\S*)|(?P<keyword>{_KEYWORD}){_VALUE}",
    re.IGNORECASE,
)


def _is_secret(name: str) -> bool:
    lowered = unquote(name).lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _redact_query(query: str) -> str:
    items = []
    for item in query.split("&"):
        name, sep, _ = item.partition("=")
        # A percent-encoded "=" could hide the boundary: judge the decoded item as a whole.
        if _is_secret(name) or (not sep and _is_secret(item)):
            items.append(f"{name}={MASK}" if sep else MASK)
        else:
            items.append(item)
    return "&".join(items)


def _redact_url_form(url: str) -> str:
    scheme = _SCHEME_RE.match(url)
    assert scheme is not None
    rest = url[scheme.end():]
    # libpq ends the user info at an "@" before the first "/", URL parsers at the last "@"
    # before the "?": hide up to whichever reaches further.
    at = max(rest.partition("/")[0].rfind("@"), rest.partition("?")[0].rfind("@"))
    user_info, after = (rest[:at], rest[at + 1:]) if at >= 0 else ("", rest)
    shown_user = f"{user_info.split(':', 1)[0]}:{MASK}@" if ":" in user_info else (
        f"{user_info}@" if at >= 0 else ""
    )
    base, sep, query = after.partition("?")
    return f"{scheme.group()}{shown_user}{base}{sep}{_redact_query(query) if sep else ''}"


def redact_url(url: str) -> str:
    """Return a connection string (URL or ``keyword=value`` form) with every secret replaced."""
    if _SCHEME_RE.match(url):
        return _redact_url_form(url)
    return _KEYWORD_RE.sub(lambda m: m.group(1) + MASK, url)


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return free text (an error message, a log line) with connection secrets and ``secrets`` hidden."""

    def one(match: re.Match[str]) -> str:
        if match.group("url") is not None:
            return _redact_url_form(match.group("url"))
        return match.group("keyword") + MASK

    shown = _URL_OR_KEYWORD_RE.sub(one, text)
    for secret in secrets:
        if secret:
            for form in {secret, quote(secret, safe=""), quote(secret)}:
                shown = shown.replace(form, MASK)
    return shown


def backend_kind(url: str) -> str:
    """Return only which backend a database URL names (``sqlite``, ``postgresql``), never more."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme.startswith("postgres"):
        return "postgresql"
    return scheme if scheme in ("sqlite",) else "unknown"


class RedactingFormatter(logging.Formatter):
    """A log formatter that hides connection secrets in every line, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        """Format the record as usual, then redact it."""
        return redact_text(super().format(record))
