"""``manage.py d7sms_send``: send (or schedule) one text to one or more numbers.

Exit codes: 0 stored and queued (or scheduled); 1 the backend cannot send (no credentials),
nothing stored; 2 invalid arguments (a number, the text, the sender or the time); 3 stored, but
sending is paused until a balance check succeeds.
"""

import datetime

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from d7sms import api, pause
from d7sms.models import SendMode

EXIT_INVALID = 2
EXIT_PAUSED = 3


def _aware(value):
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--at {value!r} is not an ISO 8601 time, e.g. 2030-01-31T09:00+01:00.", returncode=EXIT_INVALID
        ) from None
    # A time without an offset is read in the project's TIME_ZONE, as the admin would.
    return timezone.make_aware(when) if timezone.is_naive(when) else when


class Command(BaseCommand):
    help = "Send an SMS to one or more numbers through the configured backend (exit 2: invalid input, 3: paused)."

    def add_arguments(self, parser):
        parser.add_argument("--to", action="append", required=True, metavar="NUMBER",
                            help="Recipient; repeat for several. National numbers use DEFAULT_REGION.")
        parser.add_argument("--content", required=True, metavar="TEXT", help="The message text.")
        parser.add_argument("--sender", metavar="S", help="Sender id (default: DEFAULT_SENDER).")
        parser.add_argument("--at", metavar="ISO", help="Send at this time (ISO 8601; no offset: TIME_ZONE).")
        parser.add_argument("--remote", action="store_true",
                            help="With --at and several numbers: let D7 hold the sendout (not cancellable).")
        parser.add_argument("--mode", choices=[m.value for m in SendMode], default=SendMode.BATCH.value,
                            help="For several numbers: one sendbatch call per chunk, or one send per message.")
        parser.add_argument("--dlr-level", type=int, choices=[0, 1, 2, 3], help="Delivery reports to ask for.")

    def handle(self, *args, **options):
        when = _aware(options["at"]) if options["at"] else None
        common = {"sender": options["sender"], "schedule_at": when, "dlr_level": options["dlr_level"]}
        try:
            if len(options["to"]) == 1 and not options["remote"]:
                message = api.send_sms(options["to"][0], options["content"], **common)
                self.stdout.write(self._describe_message(message))
            else:
                sendout = api.send_batch(
                    options["to"], options["content"], mode=options["mode"], remote_schedule=options["remote"], **common
                )
                self.stdout.write(self._describe_sendout(sendout))
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages), returncode=EXIT_INVALID) from None
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        if pause.is_paused(fresh=True):
            raise CommandError(
                "Stored, but sending is paused (D7 refused the credentials or the account has no credit); "
                "it goes out after a successful `manage.py d7sms_balance`.",
                returncode=EXIT_PAUSED,
            )

    def _describe_message(self, message):
        if message.status == "pending":
            return f"Message {message.pk} to {message.to} scheduled for {message.scheduled_at.isoformat()}."
        return f"Message {message.pk} to {message.to} queued."

    def _describe_sendout(self, sendout):
        counts = f"{sendout.recipient_count} recipient(s)"
        if sendout.duplicate_count:
            counts += f", {sendout.duplicate_count} duplicate(s) removed"
        if sendout.schedule_at and sendout.schedule_at > timezone.now():
            where = "at D7" if sendout.remote_schedule else "here"
            return f"Sendout {sendout.pk} ({counts}) scheduled {where} for {sendout.schedule_at.isoformat()}."
        return f"Sendout {sendout.pk} ({counts}) queued."
