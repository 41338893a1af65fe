"""URLs of d7sms: include with ``path("d7sms/", include("d7sms.urls"))``.

The callback URLs are built by :mod:`d7sms.webhook_urls`; their shapes are a contract with
every message already handed to D7, so change them only by adding new routes.
"""

from django.urls import path

from d7sms.webhooks import schema, views

app_name = "d7sms"

urlpatterns = [
    path("dlr/<int:message_id>/<str:token>/", views.DeliveryReportView.as_view(), name="dlr"),
    path("dlr/<str:token>/", views.AnyDeliveryReportView.as_view(), name="dlr-any"),
    path("callback/<uuid:sendout_key>/<str:token>/", views.CallbackView.as_view(), name="callback"),
    path("errback/<uuid:sendout_key>/<str:token>/", views.ErrbackView.as_view(), name="errback"),
    path("schema/", schema.SchemaView.as_view(), name="schema"),
]
