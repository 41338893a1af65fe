import logging

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class D7SMSConfig(AppConfig):
    name = "d7sms"
    verbose_name = _("SMS (D7)")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from d7sms import checks, project_checks  # noqa: F401  (registers the system checks)
        from d7sms import signals, tasks
        from d7sms.webhooks.security import RedactTokens

        # Django's request logger writes the path of every 4xx and 5xx; a receiver's path
        # holds its token.
        request_logger = logging.getLogger("django.request")
        if not any(isinstance(f, RedactTokens) for f in request_logger.filters):
            request_logger.addFilter(RedactTokens())
        # The stored balance follows what each sendout spent (read on a worker, not here).
        signals.sendout_completed.connect(tasks.read_balance_soon, dispatch_uid="d7sms-balance-after-sendout")
