"""Command line: users, API tokens, the state schema and the worker.

Run as `python -m sentinel <command>` (or `flask --app app <command>`).
"""

import functools
import secrets
import sys

import click
from flask import current_app
from flask.cli import AppGroup

from . import config, state
from .auth import accounts, sessions
from .errors import NotFound, SentinelError

users = AppGroup("users", help="Manage the users who may sign in.")
tokens = AppGroup("tokens", help="Manage API tokens for programs.")
db = AppGroup("db", help="Sentinel's state database.")


def reports_errors(command):
    """Print a SentinelError as one line and exit 1, instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SentinelError as exc:
            raise click.ClickException(exc.message) from None

    return wrapper


def read_password(from_stdin):
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users.command("create")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@reports_errors
def create_user(username, password_stdin):
    """Create a user (password prompted, or read from stdin)."""
    accounts.create_user(username, read_password(password_stdin))
    click.echo(f"User {username} created.")


@users.command("list")
def list_users():
    """List users with their creation date."""
    for user in accounts.list_users():
        click.echo(f"{user.username}\t{user.created_at:%Y-%m-%d %H:%M:%S}")


@users.command("delete")
@click.argument("username")
@reports_errors
def delete_user(username):
    """Delete a user, with their sessions and tokens."""
    accounts.delete_user(username)
    click.echo(f"User {username} deleted.")


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@reports_errors
def change_password(username, password_stdin):
    """Set a user's password."""
    accounts.set_password(username, read_password(password_stdin))
    click.echo(f"Password of {username} changed.")


@users.command("ensure-admin")
@reports_errors
def ensure_admin():
    """Make sure the user `admin` exists.

    With SENTINEL_ADMIN_PASSWORD set, admin gets that password. Without it, a
    missing admin is created with a generated password printed once here.
    """
    password = current_app.config["SENTINEL"]["admin_password"]
    try:
        accounts.get_user("admin")
    except NotFound:
        generated = not password
        password = password or secrets.token_urlsafe(12)
        accounts.create_user("admin", password)
        shown = password if generated else "the one in SENTINEL_ADMIN_PASSWORD"
        click.echo(f"user admin created, password: {shown}")
        return
    if password:
        accounts.set_password("admin", password)
        click.echo("user admin, password: the one in SENTINEL_ADMIN_PASSWORD")
    else:
        click.echo("user admin, password unchanged (python -m sentinel users passwd admin)")


@tokens.command("create")
@click.argument("username")
@click.argument("name")
@reports_errors
def create_token(username, name):
    """Create an API token NAME for USERNAME and print it (shown only once)."""
    token = sessions.create_token(accounts.get_user(username), name)
    click.echo(token)


@tokens.command("list")
def list_tokens():
    """List API tokens (never their values)."""
    for token in sessions.list_tokens():
        used = f"{token.last_used_at:%Y-%m-%d %H:%M:%S}" if token.last_used_at else "never used"
        click.echo(f"{token.user.username}\t{token.name}\t{used}")


@tokens.command("revoke")
@click.argument("username")
@click.argument("name")
@reports_errors
def revoke_token(username, name):
    """Revoke USERNAME's API token NAME."""
    sessions.revoke_token(accounts.get_user(username), name)
    click.echo(f"Token {name} of {username} revoked.")


@db.command("upgrade")
def upgrade():
    """Apply pending migrations (every process also does this when it starts)."""
    settings = current_app.config["SENTINEL"]
    applied = state.migrate(state.database.obj, settings["state_dir"])
    click.echo(f"Applied: {', '.join(applied)}" if applied else "The schema is up to date.")


@db.command("status")
def status():
    """Show the migrations and when each was applied."""
    with state.database.connection_context():
        for migration in state.runner(state.database.obj).status():
            applied = f"{migration.applied:%Y-%m-%d %H:%M:%S}" if migration.applied else "pending"
            click.echo(f"{migration.name}\t{applied}")


@click.command("worker")
@click.option("--cron/--no-cron", default=True, help="Also run the periodic-job scheduler.")
@click.option("--burst", is_flag=True, help="Stop once the queue is empty (for tests).")
def worker_command(cron, burst):
    """Run the RQ worker for maintenance and collection jobs."""
    from . import worker

    worker.run(current_app._get_current_object(), with_cron=cron, burst=burst)


@click.command("check-config")
def check_config():
    """Print the effective settings, secrets masked."""
    settings = current_app.config["SENTINEL"]
    click.echo(f"# {settings['config_file']}")
    for setting in config.SETTINGS:
        value = settings[setting.name]
        if setting.name in ("secret_key", "admin_password", "agent_key") and value:
            value = "********"
        click.echo(f"{setting.env}={value}")


def register(app):
    for command in (users, tokens, db, worker_command, check_config):
        app.cli.add_command(command)
