"""The pgconf plugin's state: the history of setting changes, and the values
last seen, to find changes made outside Sentinel."""

from peewee import BooleanField, CharField, DateTimeField, Model, TextField


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class SettingChange(Base):
        instance = CharField(max_length=255)
        changed_at = DateTimeField()
        username = CharField(max_length=64, null=True)
        name = CharField(max_length=255)
        previous = TextField(null=True)
        value = TextField()
        revert_value = TextField()
        state = CharField(max_length=16)

        class Meta:
            indexes = ((("instance", "changed_at"), False),)

    class SeenSetting(Base):
        instance = CharField(max_length=255)
        name = CharField(max_length=255)
        value = TextField()
        source = CharField(max_length=64, null=True)
        awaited = BooleanField(default=False)

        class Meta:
            indexes = ((("instance", "name"), True),)

    class SeenDigest(Base):
        instance = CharField(max_length=255, unique=True)
        digest = CharField(max_length=64)
        seen_at = DateTimeField()

    db.create_tables([SettingChange, SeenSetting, SeenDigest])
