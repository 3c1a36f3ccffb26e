"""Commands a running hub prints for people to try in another shell, written as they will run.

Each is one line that works as printed, from any shell of the same user: a ``cd`` to where the hub
was started, then this very meterhub (``meterhub`` when the PATH finds it, else its script's
path, else ``python -m meterhub``), with ``--database-url`` when the hub was not started on the
default database. The one exception is a database URL with a password, which is never printed:
its line says where the password goes.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["invocation", "try_lines"]


def invocation() -> str:
    """Return how this very meterhub is run from a shell: ``meterhub`` when the PATH finds it,
    else its script's path (relative to the working directory when inside it), else ``python -m``."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is None or script.name != "meterhub" or not script.exists():
        return f"{shlex.quote(sys.executable)} -m meterhub"
    found = shutil.which("meterhub")
    if found is not None and Path(found).resolve() == script.resolve():
        return "meterhub"
    absolute = script.absolute()
    try:
        return shlex.quote(str(absolute.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(absolute))


def try_lines(database_url: str, commands: Sequence[str]) -> list[str]:
    """Return a ``cd`` line, then each of ``commands`` (arguments of meterhub) as a full command.

    A database URL holding a secret (a password) is never printed: the lines then begin with an
    ``export`` of the URL with ``***`` where the secret goes, and the commands read it from there.
    """
    from meterhub.redact import redact_url
    from meterhub.store.factory import DEFAULT_DATABASE_URL

    lines = [f"cd {shlex.quote(str(Path.cwd()))}"]
    meterhub = invocation()
    shown = redact_url(database_url)
    if shown != database_url:
        lines.append(f"export METERHUB_DATABASE_URL={shlex.quote(shown)}  # put the password in place of ***")
    elif database_url != DEFAULT_DATABASE_URL:
        meterhub += f" --database-url {shlex.quote(database_url)}"
    return [*lines, *(f"{meterhub} {command}" for command in commands)]
