"""``meterhub users``: who may use the hub's API, with which role, and what is shared with them."""

from __future__ import annotations

import os

import click

from meterhub.api import security
from meterhub.cli.common import emit, format_option, opened_store
from meterhub.errors import ConfigError
from meterhub.model import UserRole
from meterhub.store.accounts import SHARE_KINDS

__all__ = ["users"]

_ROLES = click.Choice([role.value for role in UserRole])
password_env_option = click.option(
    "--password-env",
    metavar="NAME",
    default=None,
    help="Read the password from environment variable NAME instead of a prompt.",
)


def _password(env_name: str | None) -> str:
    """Return the password from the named environment variable, or ask for it twice."""
    if env_name is not None:
        value = os.environ.get(env_name)
        if value is None:
            raise ConfigError(f"environment variable {env_name} (named by --password-env) is not set")
        return value
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group()
def users() -> None:
    """Add users of the API, set their roles and passwords, and share meters and places."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=_ROLES, required=True, help="admin manages everything; viewers only read.")
@password_env_option
def add(name: str, role: str, password_env: str | None) -> None:
    """Add a user (the first one should be an admin)."""
    security.check_user_name(name)
    password = security.check_password(_password(password_env))
    with opened_store() as store:
        security.create_user(store, name, UserRole(role), password)
    click.echo(f"added {role} {name}")


@users.command("list")
@format_option
def list_(fmt: str) -> None:
    """List users with their roles, API keys and shares."""
    with opened_store() as store:
        rows = [
            (
                user.name,
                user.role.value,
                user.created_at,
                sum(not key.revoked for key in store.list_api_keys(user.name)),
                " ".join(f"{kind}:{object_id}" for kind, object_id in store.shares_of(user.name)),
            )
            for user in store.list_users()
        ]
    emit(["name", "role", "created", "keys", "shares"], rows, fmt, title="users")


@users.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Remove a user with their API keys and shares (never the last admin)."""
    with opened_store() as store:
        security.remove_user(store, name)
    click.echo(f"removed {name}")


@users.command("passwd")
@click.argument("name")
@password_env_option
def passwd(name: str, password_env: str | None) -> None:
    """Set a user's password; their sign-in sessions end."""
    with opened_store() as store:
        store.get_user(name)
        security.change_password(store, name, _password(password_env))
    click.echo(f"password of {name} changed")


@users.command("role")
@click.argument("name")
@click.argument("role", type=_ROLES)
def role(name: str, role: str) -> None:
    """Change a user's role (never leaving the hub without an admin)."""
    with opened_store() as store:
        security.set_role(store, name, UserRole(role))
    click.echo(f"{name} is now {role}")


@users.command("share")
@click.argument("name")
@click.argument("kind", type=click.Choice(SHARE_KINDS))
@click.argument("object_id", metavar="ID")
def share(name: str, kind: str, object_id: str) -> None:
    """Let a member or viewer see a meter, or a place with its meters."""
    with opened_store() as store:
        store.share(name, kind, object_id)
    click.echo(f"shared {kind} {object_id} with {name}")


@users.command("unshare")
@click.argument("name")
@click.argument("kind", type=click.Choice(SHARE_KINDS))
@click.argument("object_id", metavar="ID")
def unshare(name: str, kind: str, object_id: str) -> None:
    """Stop sharing a meter or place with a user."""
    with opened_store() as store:
        store.unshare(name, kind, object_id)
    click.echo(f"stopped sharing {kind} {object_id} with {name}")
