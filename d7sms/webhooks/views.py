"""HTTP receivers for D7's calls: DLRs (GET or POST form) and batch callbacks/errbacks (GET).

Each call is authenticated by the token in its URL, stored raw and applied in one transaction,
and answered ``ACK/Jasmin`` only once that transaction has committed. Anything else D7 reads as
"try again": a 4xx names what was wrong with an authenticated call (which is stored anyway), a
503 says nothing could be stored. These views are lean on purpose: they sit on the hottest path
of the app, so there is no serializer, and DRF authentication, permissions, throttling and
content negotiation are switched off in favour of :mod:`d7sms.webhooks.security`.
"""

import logging

from django.db import IntegrityError, transaction
from django.http import HttpResponse
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.views import APIView

from d7sms.models import BatchCallback
from d7sms.webhooks import apply, callbacks, parsing, schema, security, storage, tokens

logger = logging.getLogger("d7sms.webhooks")

ACK = "ACK/Jasmin"


class PlainTextRenderer(BaseRenderer):
    """Renders DRF's own error responses (e.g. 405) as one line of text."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and "detail" in data:
            data = data["detail"]
        return str(data if data is not None else "").encode(self.charset)


class IgnoreAccept(BaseContentNegotiation):
    """D7 sends no useful Accept header; never answer 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _text(body, status=200):
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


def _describe(context):
    return ", ".join(f"{k} {v}" for k, v in context.items()) or "any message"


class Receiver(APIView):
    """Common plumbing of the receivers; subclasses implement :meth:`receive`."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()
    parser_classes = ()
    renderer_classes = (PlainTextRenderer,)
    content_negotiation_class = IgnoreAccept
    versioning_class = None

    @classmethod
    def as_view(cls, **initkwargs):
        # Under ATOMIC_REQUESTS a failed commit would surface as a 500 after the ACK was built;
        # these views commit their own transaction before they answer.
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    def perform_authentication(self, request):
        """Authentication is the URL token, checked in :meth:`handle`."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # Django's request logger would write the path of every 4xx/5xx, token included; the
        # receivers log their refusals themselves, without it.
        response._has_been_logged = True
        return response

    def handle(self, request, kind, key, token, **context):
        """Authenticate, read the parameters, store and apply; always return a response."""
        try:
            security.authenticate(request, kind, key, token)
        except security.Denied as denied:
            security.record_denied(request, kind, key, denied)
            response = _text(f"Forbidden: {denied.reason}", denied.status)
            if denied.status == 401:
                response["WWW-Authenticate"] = 'Basic realm="d7sms"'
            return response
        addr = security.remote_addr(request)
        params = {}
        try:
            params = parsing.read_params(request._request)
            self.receive(request, params, addr, **context)
        except parsing.TooLarge as exc:
            return self._refuse(exc.raw, str(exc), exc.status, addr, context)
        except parsing.Malformed as exc:
            return self._refuse(params, str(exc), 400, addr, context)
        except IntegrityError:
            # Only a D7 id already bound to another message gets here: retrying cannot help.
            logger.warning("D7 id conflict on %s %s", self.kind, key, exc_info=True)
            return self._refuse(params, "conflict: this D7 id belongs to another message", 200, addr, context)
        except Exception:  # noqa: BLE001  (D7 must hear "retry", never a 500)
            logger.exception("Could not apply a %s call for %s", self.kind, key)
            return self._refuse(params, "not applied: storage error", 503, addr, context)
        return _text(ACK)

    def _refuse(self, params, problem, status, addr, context):
        if status != 200:
            logger.warning("Did not apply a %s call (%s): %s", self.kind, _describe(context), problem)
        try:
            self.store_raw(params, problem, addr, **context)
        except Exception:  # noqa: BLE001
            logger.exception("Could not store a %s call", self.kind)
            return _text("Service unavailable: the call could not be stored", 503)
        return _text(ACK if status == 200 else problem, status)


@schema.dlr_schema
class DeliveryReportView(Receiver):
    """DLRs for one message, on the URL made by :func:`~d7sms.webhooks.tokens.dlr_url`."""

    kind = "dlr"
    http_method_names = ["get", "post"]

    def get(self, request, message_id, token):
        return self.handle(request, "dlr", message_id, token, message_id=message_id)

    def post(self, request, message_id, token):
        return self.handle(request, "dlr", message_id, token, message_id=message_id)

    def receive(self, request, params, addr, message_id=None):
        report = parsing.parse_dlr(params)
        apply.receive_dlr(params, report, message_id=message_id, method=request.method, remote_addr=addr)

    def store_raw(self, params, problem, addr, message_id=None):
        storage.store_raw_dlr(params, problem, message_id=message_id, method=self.request.method, remote_addr=addr)


@schema.any_dlr_schema
class AnyDeliveryReportView(DeliveryReportView):
    """DLRs for any message, matched by D7 id, on :func:`~d7sms.webhooks.tokens.any_dlr_url`."""

    kind = "dlr-any"

    def get(self, request, token):
        return self.handle(request, "dlr-any", tokens.ANY_DLR_KEY, token)

    def post(self, request, token):
        return self.handle(request, "dlr-any", tokens.ANY_DLR_KEY, token)


class BatchReceiver(Receiver):
    http_method_names = ["get"]

    def get(self, request, batch_key, token):
        return self.handle(request, self.kind, batch_key, token, batch_key=batch_key)

    def receive(self, request, params, addr, batch_key=None):
        callback = parsing.parse_callback(params, self.kind)
        callbacks.receive_callback(self.kind, batch_key, params, callback, remote_addr=addr)

    def store_raw(self, params, problem, addr, batch_key=None):
        storage.store_raw_callback(self.kind, batch_key, params, problem, remote_addr=addr)


@schema.callback_schema
class BatchCallbackView(BatchReceiver):
    """Batch callback: one message of a sendout was submitted, ``statusText`` holds its id."""

    kind = BatchCallback.Kind.CALLBACK


@schema.errback_schema
class BatchErrbackView(BatchReceiver):
    """Batch errback: one message of a sendout could not be submitted."""

    kind = BatchCallback.Kind.ERRBACK
