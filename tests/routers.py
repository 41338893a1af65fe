"""A database router that sends every d7sms model to the ``sms`` database (see tests/settings.py)."""


class D7smsElsewhere:
    database = "sms"

    def db_for_read(self, model, **hints):
        return self.database if model._meta.app_label == "d7sms" else None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        return True
