"""`python -m sentinel`: the command line."""

from flask.cli import FlaskGroup

from . import create_app_or_exit


def main():
    cli = FlaskGroup(
        name="sentinel",
        create_app=create_app_or_exit,
        add_default_commands=False,
        add_version_option=False,
        load_dotenv=False,
        set_debug_flag=False,
    )
    cli.main(prog_name="sentinel")


if __name__ == "__main__":
    main()
