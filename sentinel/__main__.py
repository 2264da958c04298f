"""`python -m sentinel`: the `sentinel` command."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="sentinel")
