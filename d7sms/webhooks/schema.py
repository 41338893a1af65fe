"""The OpenAPI description of the receivers, and the view that serves it.

The form serializers here describe the wire format for the schema only; the receivers never
run them (a serializer on the hot path costs a third of its throughput).
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers

from d7sms.webhooks.parsing import RECEIPT_STATES

_TOKEN_PATTERN = "^[0-9a-f]{32}$"
_DATE_PATTERN = r"^\d{10}(\d{2})?$"
_ID_PATTERN = r"^[\x21-\x7e]{1,64}$"
_STATUS_PATTERN = rf"^(ESME_[A-Z0-9_]{{1,35}}|{'|'.join(sorted(RECEIPT_STATES))})$"


class DeliveryReportForm(serializers.Serializer):
    """The parameters of a DLR, as query string (GET) or form body (POST)."""

    id = serializers.RegexField(_ID_PATTERN, max_length=64, help_text="D7's message id.")
    level = serializers.ChoiceField(choices=["1", "2"], help_text="1: SMSC level, 2: terminal level.")
    message_status = serializers.RegexField(
        _STATUS_PATTERN,
        max_length=40,
        help_text=f"Level 1: an SMPP command status (ESME_*). Level 2: one of {', '.join(sorted(RECEIPT_STATES))}.",
    )
    id_smsc = serializers.CharField(required=False, max_length=64, help_text="The SMSC's id (level 2).")
    sub = serializers.CharField(required=False, help_text="Parts submitted (level 2).")
    dlvrd = serializers.CharField(required=False, help_text="Parts delivered (level 2).")
    subdate = serializers.RegexField(_DATE_PATTERN, required=False, help_text="Submit date, YYMMDDhhmm.")
    donedate = serializers.RegexField(_DATE_PATTERN, required=False, help_text="Done date, YYMMDDhhmm.")
    err = serializers.CharField(required=False, max_length=10, help_text="Error code of the receipt (level 2).")
    text = serializers.CharField(required=False, help_text="The first 20 characters of the message (level 2).")


_DLR_QUERY = [
    OpenApiParameter(
        "id", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True, pattern=_ID_PATTERN,
        description="D7's message id.",
    ),
    OpenApiParameter("level", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True, enum=["1", "2"]),
    OpenApiParameter(
        "message_status",
        OpenApiTypes.STR,
        OpenApiParameter.QUERY,
        required=True,
        pattern=_STATUS_PATTERN,
        description="Level 1: an ESME_* command status; level 2: a receipt state.",
    ),
    OpenApiParameter("id_smsc", OpenApiTypes.STR, OpenApiParameter.QUERY),
    OpenApiParameter("sub", OpenApiTypes.STR, OpenApiParameter.QUERY),
    OpenApiParameter("dlvrd", OpenApiTypes.STR, OpenApiParameter.QUERY),
    OpenApiParameter("subdate", OpenApiTypes.STR, OpenApiParameter.QUERY, pattern=_DATE_PATTERN),
    OpenApiParameter("donedate", OpenApiTypes.STR, OpenApiParameter.QUERY, pattern=_DATE_PATTERN),
    OpenApiParameter("err", OpenApiTypes.STR, OpenApiParameter.QUERY),
    OpenApiParameter("text", OpenApiTypes.STR, OpenApiParameter.QUERY),
]
_TOKEN = OpenApiParameter(
    "token", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=_TOKEN_PATTERN,
    description="The URL's authentication token.",
)
_MESSAGE_ID = OpenApiParameter("message_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Our message's id.")
_BATCH_KEY = OpenApiParameter("batch_key", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The sendout's key.")
_CALLBACK_QUERY = [
    OpenApiParameter("batchId", OpenApiTypes.STR, OpenApiParameter.QUERY, description="D7's batch id."),
    OpenApiParameter("to", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True, description="The destination."),
    OpenApiParameter("status", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=["0", "1"]),
    OpenApiParameter(
        "statusText", OpenApiTypes.STR, OpenApiParameter.QUERY,
        description='Callback: Success "<message id>"; errback: the error.',
    ),
]


def _text_response(description):
    return OpenApiResponse(OpenApiTypes.STR, description=description)


_RESPONSES = {
    200: _text_response("ACK/Jasmin: the call is stored and applied (or kept as an orphan)."),
    400: _text_response("Malformed: the text names the problem; stored, not applied."),
    401: _text_response("Basic auth credentials required (when configured)."),
    403: _text_response("Not authenticated: invalid token or address; nothing stored."),
    413: _text_response("Body longer than WEBHOOK_MAX_BODY; stored truncated."),
    414: _text_response("Query string longer than WEBHOOK_MAX_BODY; stored truncated."),
    503: _text_response("Could not be stored; D7 will retry."),
}


def _dlr_views(name, path_params):
    common = {"responses": _RESPONSES, "tags": ["delivery reports"], "auth": []}
    return extend_schema_view(
        get=extend_schema(
            operation_id=f"{name}_get",
            summary="Receive a DLR (dlr-method GET)",
            parameters=[*path_params, *_DLR_QUERY],
            **common,
        ),
        post=extend_schema(
            operation_id=f"{name}_post",
            summary="Receive a DLR (dlr-method POST)",
            parameters=path_params,
            request={"application/x-www-form-urlencoded": DeliveryReportForm},
            **common,
        ),
    )


def _batch_views(name, summary):
    return extend_schema_view(
        get=extend_schema(
            operation_id=name,
            summary=summary,
            parameters=[_BATCH_KEY, _TOKEN, *_CALLBACK_QUERY],
            responses=_RESPONSES,
            tags=["batch callbacks"],
            auth=[],
        )
    )


dlr_schema = _dlr_views("dlr", [_MESSAGE_ID, _TOKEN])
any_dlr_schema = _dlr_views("dlr_any", [_TOKEN])
callback_schema = _batch_views("batch_callback", "Receive a batch callback (a message was submitted)")
errback_schema = _batch_views("batch_errback", "Receive a batch errback (a message could not be submitted)")


def only_receivers(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: keep d7sms's receivers, drop the host's other APIs."""
    return [e for e in endpoints if getattr(e[3], "cls", None) and e[3].cls.__module__ == "d7sms.webhooks.views"]


class SchemaView(SpectacularAPIView):
    """Serves the receivers' OpenAPI schema (YAML, or JSON with ``?format=json``)."""

    custom_settings = {
        "TITLE": "d7sms webhooks",
        "DESCRIPTION": "The URLs D7 calls back: delivery reports and batch callbacks.",
        "PREPROCESSING_HOOKS": ["d7sms.webhooks.schema.only_receivers"],
    }
