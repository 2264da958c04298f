"""Users, sessions, API tokens, notifications and login failures."""

from peewee import CharField, DateTimeField, ForeignKeyField, Model, TextField

# Frozen copies of the models as this migration creates them: later changes to
# sentinel.state must come as new migrations, never as edits here.


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class User(Base):
        username = CharField(unique=True, max_length=64)
        password_hash = CharField(max_length=255)
        created_at = DateTimeField()

        class Meta:
            table_name = "users"  # "user" is a reserved word in PostgreSQL

    class Session(Base):
        token_hash = CharField(unique=True, max_length=64)
        user = ForeignKeyField(User, on_delete="CASCADE")
        created_at = DateTimeField()
        expires_at = DateTimeField(index=True)
        client = CharField(max_length=64, default="")

    class ApiToken(Base):
        token_hash = CharField(unique=True, max_length=64)
        name = CharField(max_length=64)
        user = ForeignKeyField(User, on_delete="CASCADE")
        created_at = DateTimeField()
        last_used_at = DateTimeField(null=True)

        class Meta:
            indexes = ((("user", "name"), True),)

    class Notification(Base):
        created_at = DateTimeField(index=True)
        username = CharField(max_length=64)
        message = TextField()

    class LoginFailure(Base):
        scope = CharField(max_length=16)
        key = CharField(max_length=255)
        at = DateTimeField()

        class Meta:
            indexes = ((("scope", "key", "at"), False),)

    db.create_tables([User, Session, ApiToken, Notification, LoginFailure])
