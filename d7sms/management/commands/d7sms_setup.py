"""``manage.py d7sms_setup``: create the housekeeping schedule; safe to run on every deploy.

Like every command it runs the system checks first, which say what else the project lacks
(a broker that can be imported, a shared cache for THROUGHPUT, the SQLite options).
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from d7sms import tasks


class Command(BaseCommand):
    help = "Create or update d7sms's django-q2 housekeeping schedule (idempotent)."

    def handle(self, *args, **options):
        schedule, created = tasks.ensure_housekeeping()
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} schedule {schedule.name!r}: every {schedule.minutes} minute(s).")
        if not getattr(settings, "Q_CLUSTER", None):
            self.stderr.write("settings.Q_CLUSTER is not set: run a django-q2 cluster (manage.py qcluster) to send.")
