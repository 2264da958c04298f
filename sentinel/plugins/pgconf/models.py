"""What Sentinel keeps of the instance's settings: every change seen, and the
values it last saw (to tell a change made outside Sentinel)."""

import peewee

from ...state import BaseModel, utcnow

# SettingChange.state
APPLIED = "applied"
PENDING_RESTART = "pending_restart"


class SettingChange(BaseModel):
    """One setting changed, through Sentinel (username set) or outside it
    (username null): its value before and after, and whether it took effect."""

    instance = peewee.CharField(max_length=255)  # host:port of the instance
    changed_at = peewee.DateTimeField(default=utcnow)
    username = peewee.CharField(max_length=64, null=True)
    name = peewee.CharField(max_length=255)
    previous = peewee.TextField(null=True)
    value = peewee.TextField()  # "" when the setting was reset to its default
    # What a revert writes back: "" resets (the line goes from postgresql.auto.conf).
    revert_value = peewee.TextField()
    state = peewee.CharField(max_length=16)  # APPLIED | PENDING_RESTART

    class Meta:
        indexes = ((("instance", "changed_at"), False),)


class SeenSetting(BaseModel):
    """The value of a setting when Sentinel last looked (current_setting());
    `awaited` when Sentinel changed it and has not seen the new value yet."""

    instance = peewee.CharField(max_length=255)
    name = peewee.CharField(max_length=255)
    value = peewee.TextField()
    source = peewee.CharField(max_length=64, null=True)  # pg_settings.source
    awaited = peewee.BooleanField(default=False)

    class Meta:
        indexes = ((("instance", "name"), True),)


class SeenDigest(BaseModel):
    """A digest of all the SeenSetting values of an instance: one row read
    tells that nothing changed since."""

    instance = peewee.CharField(max_length=255, unique=True)
    digest = peewee.CharField(max_length=64)
    seen_at = peewee.DateTimeField(default=utcnow)
