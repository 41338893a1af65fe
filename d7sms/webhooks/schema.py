"""The OpenAPI description of the receivers, built from the rules the parser enforces, and the
view that serves it.

Every parameter's type, length, pattern and choices come from
:data:`~d7sms.webhooks.parsing.DLR_RULES` and its siblings, so the schema cannot say other than
what the receivers accept.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers

from d7sms.webhooks.parsing import CALLBACK_RULES, DLR_RULES, ERRBACK_RULES

_TOKEN_PATTERN = "^[0-9a-f]{32}$"


def _anchored(pattern):
    # OpenAPI patterns search; the parser matches the whole value.
    return f"^(?:{pattern})$"


def _string(rule):
    """The JSON schema of one parameter's value."""
    schema = {"type": "string", "maxLength": rule.max_length}
    if rule.choices is not None:
        schema["enum"] = list(rule.choices)
    if rule.pattern is not None:
        schema["pattern"] = _anchored(rule.pattern)
    return schema


def _query(rules):
    return [
        OpenApiParameter(rule.name, _string(rule), OpenApiParameter.QUERY, required=rule.required, description=rule.description)
        for rule in rules
    ]


def _form_field(rule):
    common = {"required": rule.required, "help_text": rule.description}
    if rule.choices is not None:
        return serializers.ChoiceField(choices=list(rule.choices), **common)
    if rule.pattern is not None:
        return serializers.RegexField(_anchored(rule.pattern), max_length=rule.max_length, **common)
    return serializers.CharField(max_length=rule.max_length, **common)


_forms = {}


def _form(name, rules):
    # One serializer per name: two of the same name are two schema components to drf-spectacular,
    # which then warns on every request for the schema.
    if name not in _forms:
        _forms[name] = inline_serializer(name, fields={rule.name: _form_field(rule) for rule in rules})
    return _forms[name]


_TOKEN = OpenApiParameter(
    "token", {"type": "string", "pattern": _TOKEN_PATTERN}, OpenApiParameter.PATH,
    description="The URL's authentication token.",
)
_MESSAGE_ID = OpenApiParameter("message_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Our message's id.")
_SENDOUT_KEY = OpenApiParameter(
    "sendout_key", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The sendout's key."
)


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


def _on_spectacular(view_decorator):
    """``view_decorator`` (an ``extend_schema_view``), built on drf-spectacular's AutoSchema.

    ``extend_schema`` on a view method subclasses the method's own schema class if it has one,
    else DRF's global DEFAULT_SCHEMA_CLASS, read when the view module is imported. A project
    that never names drf-spectacular there would get DRF's AutoSchema, whose get_operation
    drf-spectacular cannot call: the schema view answered 500. So each method names its own.
    """

    def decorate(view):
        for name in ("get", "post"):
            method = view.__dict__.get(name) or getattr(view, name, None)
            if method is not None and "schema" not in getattr(method, "kwargs", {}):
                method.kwargs = {**getattr(method, "kwargs", {}), "schema": AutoSchema}
        return view_decorator(view)

    return decorate


def _dlr_views(name, path_params):
    common = {"responses": _RESPONSES, "tags": ["delivery reports"], "auth": []}
    return _on_spectacular(extend_schema_view(
        get=extend_schema(
            operation_id=f"{name}_get",
            summary="Receive a DLR (dlr-method GET)",
            parameters=[*path_params, *_query(DLR_RULES)],
            **common,
        ),
        post=extend_schema(
            operation_id=f"{name}_post",
            summary="Receive a DLR (dlr-method POST)",
            parameters=path_params,
            request={"application/x-www-form-urlencoded": _form("DeliveryReportForm", DLR_RULES)},
            **common,
        ),
    ))


def _batch_views(name, summary, rules):
    return _on_spectacular(extend_schema_view(
        get=extend_schema(
            operation_id=name,
            summary=summary,
            parameters=[_SENDOUT_KEY, _TOKEN, *_query(rules)],
            responses=_RESPONSES,
            tags=["batch callbacks"],
            auth=[],
        )
    ))


dlr_schema = _dlr_views("dlr", [_MESSAGE_ID, _TOKEN])
any_dlr_schema = _dlr_views("dlr_any", [_TOKEN])
callback_schema = _batch_views("batch_callback", "Receive a batch callback (a message was submitted)", CALLBACK_RULES)
errback_schema = _batch_views(
    "batch_errback", "Receive a batch errback (a message could not be submitted)", ERRBACK_RULES
)


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
