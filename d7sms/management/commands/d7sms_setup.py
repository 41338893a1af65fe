"""``manage.py d7sms_setup``: create the housekeeping schedule; safe to run on every deploy."""

from django.conf import settings
from django.core.cache import caches
from django.core.management.base import BaseCommand

from d7sms import conf, tasks


class Command(BaseCommand):
    help = "Create or update d7sms's django-q2 housekeeping schedule (idempotent)."

    def handle(self, *args, **options):
        schedule, created = tasks.ensure_housekeeping()
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} schedule {schedule.name!r}: every {schedule.minutes} minute(s).")
        if not getattr(settings, "Q_CLUSTER", None):
            self.stderr.write("settings.Q_CLUSTER is not set: run a django-q2 cluster (manage.py qcluster) to send.")
        backend = caches[conf.get("CACHE_ALIAS")].__class__.__name__
        if conf.get("THROUGHPUT") and backend in ("LocMemCache", "DummyCache"):
            self.stderr.write(
                f"THROUGHPUT is set but the {conf.get('CACHE_ALIAS')!r} cache is a {backend}: "
                "each process would throttle on its own. Use Redis, Memcached or the database cache."
            )
