"""URLs of d7sms: include with ``path("d7sms/", include("d7sms.urls"))``."""

from django.urls import path

from d7sms.webhooks import views

app_name = "d7sms"

urlpatterns = [
    path("dlr/<int:message_id>/<str:token>/", views.DeliveryReportView.as_view(), name="dlr"),
    path("batch/<uuid:batch_key>/<str:token>/callback/", views.BatchCallbackView.as_view(), name="batch-callback"),
    path("batch/<uuid:batch_key>/<str:token>/errback/", views.BatchErrbackView.as_view(), name="batch-errback"),
]
