"""The D7 balance as staff see it: a panel showing the stored reading, and a refresh."""

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from d7sms import conf, pause
from d7sms.models import AccountState


def panel_context(request):
    """What the balance panel shows; reads only the stored state (one query, no HTTP)."""
    state = AccountState.get()
    threshold = conf.get("BALANCE_WARNING_THRESHOLD")
    max_age = timedelta(seconds=conf.get("BALANCE_CACHE_SECONDS"))
    read_at = state.balance_read_at
    return {
        "state": state,
        "currency": conf.get("CURRENCY"),
        **pause_context(state),
        "threshold": threshold,
        "low": state.balance is not None and threshold is not None and state.balance < threshold,
        "stale": read_at is None or timezone.now() - read_at > max_age,
        "can_refresh": can_view(request.user),
        "next": request.get_full_path(),
    }


def pause_context(state):
    """Whether sending here is paused, or only some other credentials (a one-off command's) are."""
    here = pause.applies(state)
    return {"paused": here, "paused_elsewhere": state.paused and not here}


def can_view(user):
    """Anyone who may look at sendouts may see and refresh the balance."""
    return user.is_active and user.is_staff and user.has_perm("d7sms.view_sendout")


def balance_reading():
    """The balance for the compose preview: the cached reading, refreshed when stale.

    Returns ``(balance, error)``; ``balance`` is None when it cannot be read now.
    """
    from d7sms import api

    try:
        return api.get_balance(refresh=False), ""
    except Exception as exc:  # noqa: BLE001  (any failure means "unknown", shown as a warning)
        return None, str(exc) or type(exc).__name__


@require_POST
def refresh_view(request, fallback):
    """Read the balance from D7 now, then go back where the button was pressed (or ``fallback``)."""
    if not can_view(request.user):
        raise PermissionDenied
    from d7sms import api

    try:
        reading = api.get_balance(refresh=True)
    except Exception as exc:  # noqa: BLE001  (shown to the user; the API call already logged it)
        messages.error(request, _("The balance could not be read: %(error)s") % {"error": exc})
    else:
        messages.success(request, _("Balance read from D7: %(balance)s.") % {"balance": _describe(reading)})
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        target = fallback
    return HttpResponseRedirect(target)


def _describe(reading):
    parts = []
    if reading.balance is not None:
        parts.append(str(reading.balance))
    if reading.sms_count is not None:
        parts.append(_("%(n)s SMS") % {"n": reading.sms_count})
    return ", ".join(parts) or _("no limit")
