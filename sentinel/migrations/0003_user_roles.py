"""Users get a role: `admin` changes things, `viewer` only reads.

Users that existed before roles could change everything: they stay admins.
"""

from peewee import CharField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("users", "role", CharField(max_length=16, default="admin"))
    )
