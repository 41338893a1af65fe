from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class D7SMSConfig(AppConfig):
    name = "d7sms"
    verbose_name = _("SMS (D7)")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from d7sms import checks  # noqa: F401  (registers the system checks)
