"""The `sentinel` command: serve, worker, users, tokens, migrate, check-config.

Installed as the `sentinel` console script; `python -m sentinel` in a
checkout. Commands that work on Sentinel's state build the application (the
configuration read, the state database bound and migrated) before they run;
`serve` and `check-config` do not need it.
"""

import functools
import os
import secrets
import sys

import click
from flask import current_app

from . import config, state
from .auth import accounts, sessions
from .errors import NotFound, SentinelError
from .version import __version__

DEFAULT_APP = "sentinel:create_app_or_exit()"


def with_app(command):
    """Run the command in the application's context, and print a
    SentinelError as one line (exit 1) instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from . import create_app_or_exit

        with create_app_or_exit().app_context():
            try:
                return command(*args, **kwargs)
            except SentinelError as exc:
                raise click.ClickException(exc.message) from None

    return wrapper


def load_or_exit(prepare=True):
    """The settings, or one line naming the bad one and exit status 2."""
    try:
        return config.load(prepare=prepare)
    except config.ConfigError as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="sentinel")
def main():
    """Sentinel, the PostgreSQL agent. Settings: /etc/sentinel/sentinel.conf
    (SENTINEL_CONFIG) and SENTINEL_* variables; `sentinel check-config`
    prints them."""
    # State, keys and logs are the service user's alone, however it was started.
    os.umask(0o077)


@main.group()
def users():
    """Manage the users who may sign in."""


@main.group()
def tokens():
    """Manage API tokens for programs."""


def read_password(from_stdin):
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


ROLE = click.Choice(accounts.ROLES)


@users.command("create")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option(
    "--role",
    type=ROLE,
    help="admin changes things, viewer only reads (default: admin for the first user, "
    "viewer for the others).",
)
@with_app
def create_user(username, password_stdin, role):
    """Create a user (password prompted, or read from stdin)."""
    user = accounts.create_user(username, read_password(password_stdin), role)
    click.echo(f"User {username} created ({user.role}).")


@users.command("role")
@click.argument("username")
@click.argument("role", type=ROLE)
@with_app
def set_role(username, role):
    """Make a user an admin or a viewer (their sessions and tokens follow at once)."""
    accounts.set_role(username, role)
    click.echo(f"User {username} is now {role}.")


@users.command("list")
@with_app
def list_users():
    """List users with their role and creation date."""
    for user in accounts.list_users():
        click.echo(f"{user.username}\t{user.role}\t{user.created_at:%Y-%m-%d %H:%M:%S}")


@users.command("delete")
@click.argument("username")
@with_app
def delete_user(username):
    """Delete a user, with their sessions and tokens."""
    accounts.delete_user(username)
    click.echo(f"User {username} deleted.")


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@with_app
def change_password(username, password_stdin):
    """Set a user's password."""
    accounts.set_password(username, read_password(password_stdin))
    click.echo(f"Password of {username} changed.")


@users.command("ensure-admin")
@with_app
def ensure_admin():
    """Make sure the user `admin` exists, with the admin role.

    With SENTINEL_ADMIN_PASSWORD set, admin gets that password. Without it, a
    missing admin is created with a generated password printed once here.
    """
    password = current_app.config["SENTINEL"]["admin_password"]
    try:
        accounts.get_user("admin")
    except NotFound:
        generated = not password
        password = password or secrets.token_urlsafe(12)
        accounts.create_user("admin", password, accounts.ADMIN)
        shown = password if generated else "the one in SENTINEL_ADMIN_PASSWORD"
        click.echo(f"user admin created, password: {shown}")
        return
    accounts.set_role("admin", accounts.ADMIN)
    if password:
        accounts.set_password("admin", password)
        click.echo("user admin, password: the one in SENTINEL_ADMIN_PASSWORD")
    else:
        click.echo("user admin, password unchanged (sentinel users passwd admin)")


@tokens.command("create")
@click.argument("username")
@click.argument("name")
@with_app
def create_token(username, name):
    """Create an API token NAME for USERNAME and print it (shown only once)."""
    token = sessions.create_token(accounts.get_user(username), name)
    click.echo(token)


@tokens.command("list")
@with_app
def list_tokens():
    """List API tokens (never their values)."""
    for token in sessions.list_tokens():
        used = f"{token.last_used_at:%Y-%m-%d %H:%M:%S}" if token.last_used_at else "never used"
        click.echo(f"{token.user.username}\t{token.name}\t{used}")


@tokens.command("revoke")
@click.argument("username")
@click.argument("name")
@with_app
def revoke_token(username, name):
    """Revoke USERNAME's API token NAME."""
    sessions.revoke_token(accounts.get_user(username), name)
    click.echo(f"Token {name} of {username} revoked.")


@main.command()
@click.option("--status", "show", is_flag=True, help="Only show each migration and when it ran.")
@with_app
def migrate(show):
    """Bring the state schema up to date (every process also does when it starts)."""
    if not show:
        applied = state.migrate(state.database.obj, current_app.config["SENTINEL"]["state_dir"])
        click.echo(f"Applied: {', '.join(applied)}" if applied else "The schema is up to date.")
    with state.database.connection_context():
        for migration in state.runner(state.database.obj).status():
            applied = f"{migration.applied:%Y-%m-%d %H:%M:%S}" if migration.applied else "pending"
            click.echo(f"{migration.name}\t{applied}")


@main.command()
@click.option("--cron/--no-cron", default=True, help="Also run the periodic-job scheduler.")
@click.option("--burst", is_flag=True, help="Stop once the queue is empty (for tests).")
@with_app
def worker(cron, burst):
    """Run the job worker: maintenance and collection jobs."""
    from . import worker as worker_module

    worker_module.run(current_app._get_current_object(), with_cron=cron, burst=burst)


@main.command()
@click.option("--app", "target", default=DEFAULT_APP, help="The WSGI application to serve.")
def serve(target):
    """Run the web service: gunicorn, configured from Sentinel's settings."""
    load_or_exit()
    # gunicorn takes over this process: systemd sees its master as the service.
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:sentinel.gunicorn_conf", target]
    os.execv(sys.executable, argv)


@main.command("check-config")
def check_config():
    """Print the effective settings (secrets masked) and what is wrong with them.

    Nothing is created: the state directory may not exist yet (systemd
    creates it when the service starts)."""
    settings = load_or_exit(prepare=False)
    click.echo(f"# {settings['config_file']}")
    for name, value in config.printable(settings).items():
        click.echo(f"{config.BY_NAME[name].env}={value}")
    for warning in settings["warnings"]:
        click.echo(f"# warning: {warning}")
