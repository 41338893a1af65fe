"""``manage.py d7sms_balance``: read the D7 account balance; a successful read lifts a pause.

Exit codes: 0 read; 1 D7 refused the request (e.g. wrong credentials) or there are no
credentials to ask with; 3 D7 could not be asked or did not answer usably (network, server
error): try again later.
"""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from d7sms import api, pause
from d7sms.errors import D7Error, ServerError, TransportError
from d7sms.models import AccountState

EXIT_REFUSED = 1
EXIT_UNREACHABLE = 3


class Command(BaseCommand):
    help = "Show the D7 account balance (exit 1: refused by D7, 3: D7 unreachable)."

    def add_arguments(self, parser):
        parser.add_argument("--cached", action="store_true", help="Show the stored reading if it is recent.")

    def handle(self, *args, **options):
        was_paused = pause.is_paused(fresh=True)
        try:
            balance = api.get_balance(refresh=not options["cached"])
        except (TransportError, ServerError) as exc:
            raise CommandError(f"Could not read the balance: {exc}", returncode=EXIT_UNREACHABLE) from None
        except D7Error as exc:
            raise CommandError(f"D7 refused the balance request: {exc}", returncode=EXIT_REFUSED) from None
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc), returncode=EXIT_REFUSED) from None
        amount = "ND (no limit)" if balance.balance is None else str(balance.balance)
        count = "ND (no limit)" if balance.sms_count is None else str(balance.sms_count)
        self.stdout.write(f"Balance: {amount}\nSMS count: {count}")
        state = AccountState.get()
        if was_paused and not pause.applies(state):
            self.stdout.write(self.style.SUCCESS("Sending resumed."))
        elif pause.applies(state):
            self.stderr.write(f"Sending is still paused: {state.pause_reason}")
