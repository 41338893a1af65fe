"""The baseline of the webhook benchmark: a bare Django view that only stores the raw report.

It does what any receiver must do at the least (read the form, INSERT one DeliveryReport row,
answer ``ACK/Jasmin``), with no authentication and no applying, so the d7sms receiver's cost
shows as a ratio against it. Also the URLconf of the benchmark server.
"""

from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from d7sms.models import DeliveryReport


@csrf_exempt
def bare_dlr(request, message_id, token):
    """Store the call as a raw DeliveryReport row for ``message_id`` and acknowledge it."""
    params = {**request.GET.dict(), **request.POST.dict()}
    level = params.get("level", "")
    DeliveryReport.objects.create(
        message_id=message_id,
        d7_message_id=params.get("id", "")[:64],
        level=int(level) if level.isdigit() else None,
        message_status=params.get("message_status", "")[:40],
        id_smsc=params.get("id_smsc", "")[:64],
        err=params.get("err", "")[:10],
        params=params,
        method=request.method,
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    return HttpResponse("ACK/Jasmin", content_type="text/plain; charset=utf-8")


urlpatterns = [
    path("bare/dlr/<int:message_id>/<str:token>/", bare_dlr, name="bare-dlr"),
    path("d7sms/", include("d7sms.urls")),
]
