"""The DRF views D7 calls: DLRs (GET or POST form) and batch callbacks/errbacks (GET).

Each call is authenticated by the token in its URL (:mod:`d7sms.webhooks.security`), stored
raw and applied in one transaction, and answered ``ACK/Jasmin`` only once that transaction has
committed. Anything else D7 reads as "try again": a 4xx names what was wrong with an
authenticated call (which is stored anyway), a 503 says nothing could be stored. There is no
serializer on this path: it is the hottest of the app, and the rules in
:mod:`d7sms.webhooks.parsing` are both the validation and the schema.

A busy database (SQLite's one writer at a time) is waited out inside the request
(:mod:`d7sms.busy`): the transaction queues for the write lock, and is tried again for up to
:attr:`Receiver.patience` seconds (10 for a DLR, 20 for a batch callback). D7 resends a DLR
that was not ACKed, so a DLR that still cannot be stored gets a 503. D7 never resends a batch
callback: one that cannot be applied in time is stored as it came (one short INSERT), answered
ACK, and applied by housekeeping.
"""

import logging

from django.db import IntegrityError, connections, transaction
from django.http import HttpResponse
from drf_spectacular.openapi import AutoSchema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.renderers import BaseRenderer
from rest_framework.views import APIView

from d7sms import busy, conf, webhook_urls
from d7sms.models import BatchCallback, db_alias
from d7sms.webhooks import callbacks, dlr, parsing, schema, security

logger = logging.getLogger("d7sms.webhooks")

ACK = "ACK/Jasmin"
# Seconds storing a call as it came keeps trying, after applying it took a receiver's patience:
# together they stay under the 30 s after which servers such as gunicorn kill a request.
_STORE_PATIENCE = 5.0


class PlainTextRenderer(BaseRenderer):
    """Renders DRF's own answers (401, 403, 405) as one line of text."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and "detail" in data:
            data = data["detail"]
        return str(data if data is not None else "").encode(self.charset)


class IgnoreAccept(BaseContentNegotiation):
    """D7 sends no useful Accept header: every answer is plain text, never a 406."""

    def select_parser(self, request, parsers):
        for parser in parsers:
            if parser.media_type == "*/*" or request.content_type.startswith(parser.media_type):
                return parser
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class FormParser(BaseParser):
    """A urlencoded body, whatever Content-Type says: Jasmin posts a form. Over WEBHOOK_MAX_BODY
    it raises :class:`~d7sms.webhooks.parsing.TooLarge` holding the start of the body."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = conf.get("WEBHOOK_MAX_BODY")
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            head = parsing.clean(body[:limit].decode("utf-8", errors="replace"))
            raise parsing.TooLarge(f"body longer than {limit} bytes", 413, {"_body": head})
        return parsing.parse_form(body, "body")


class MultipartFormParser(MultiPartParser):
    """A multipart form body, under the same limit, as the same plain dict."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = conf.get("WEBHOOK_MAX_BODY")
        meta = parser_context["request"].META
        if int(meta.get("CONTENT_LENGTH") or 0) > limit:
            head = parsing.clean(stream.read(limit).decode("utf-8", errors="replace"))
            raise parsing.TooLarge(f"body longer than {limit} bytes", 413, {"_body": head})
        try:
            form = super().parse(stream, media_type, parser_context).data
        except Exception:  # noqa: BLE001  (Django's multipart parser has many ways to fail)
            raise parsing.Malformed("the multipart body cannot be read") from None
        return parsing.to_dict((k, v) for k, values in form.lists() for v in values)


def _text(body, status=200):
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


class Receiver(APIView):
    """What the receivers share. A subclass names what its token is made for
    (``token_subject(**url kwargs)`` returns the token kind and key, see
    :class:`~d7sms.webhooks.security.TokenPermission`), stores and applies an authenticated call
    (``receive``), and stores one it cannot apply (``store_raw``)."""

    #: Seconds a call keeps trying while the database is busy (see the module docstring).
    patience = 10.0
    #: The problem stored with a call that could not be applied, and the status answered then.
    unapplied = ("not applied: storage error", 503)

    authentication_classes = (security.BasicAuthentication,)
    permission_classes = (security.TokenPermission,)
    # A project's global throttle must not turn D7's calls into 429s: callbacks are never resent.
    throttle_classes = ()
    parser_classes = (MultipartFormParser, FormParser)
    renderer_classes = (PlainTextRenderer,)
    content_negotiation_class = IgnoreAccept
    # Set here, so the schema view works whatever the project's DEFAULT_SCHEMA_CLASS is.
    schema = AutoSchema()

    @classmethod
    def as_view(cls, **initkwargs):
        # Each call commits its own transaction before it answers, on whichever database the
        # routers choose: never inside a request-wide one (ATOMIC_REQUESTS).
        view = super().as_view(**initkwargs)
        for alias in connections:
            view = transaction.non_atomic_requests(using=alias)(view)
        return view

    def respond(self, request, **kwargs):
        """Read the parameters, store and apply; always return a response."""
        addr = security.remote_addr(request)
        params = {}
        try:
            params = parsing.query_params(request.META)
            if request.method == "POST":
                params.update(request.data)
            busy.retry(
                lambda: _committed(lambda: self.receive(params, addr, **kwargs)),
                seconds=self.patience, what=f"a {self.kind} call",
            )
        except parsing.TooLarge as exc:
            return self._refuse({**params, **exc.raw}, str(exc), exc.status, addr, kwargs)
        except parsing.Malformed as exc:
            return self._refuse(params, str(exc), 400, addr, kwargs)
        except IntegrityError:
            # Only a D7 id already bound to another message gets here: retrying cannot help.
            logger.warning("D7 id conflict on a %s call", self.kind, exc_info=True)
            return self._refuse(params, "conflict: this D7 id belongs to another message", 200, addr, kwargs)
        except Exception:  # noqa: BLE001  (D7 must hear "retry", never a 500)
            logger.exception("Could not apply a %s call", self.kind)
            problem, status = self.unapplied
            return self._refuse(params, problem, status, addr, kwargs)
        return _text(ACK)

    def _refuse(self, params, problem, status, addr, kwargs):
        if status != 200:
            logger.warning("Did not apply a %s call: %s", self.kind, problem)

        def store():
            with busy.write_transaction():
                self.store_raw(params, problem, addr, **kwargs)

        try:
            busy.retry(store, seconds=_STORE_PATIENCE, what=f"storing a {self.kind} call")
        except Exception:  # noqa: BLE001
            # Kept in the log at least: its parameters (the token is in the URL, not here).
            logger.exception("Could not store a %s call; its parameters: %r", self.kind, params)
            return _text("Service unavailable: the call could not be stored", 503)
        return _text(ACK if status == 200 else problem, status)


def _committed(work):
    """Run ``work()`` in one transaction that has committed when this returns.

    A failing on-commit hook (such as a sendout refresh) raises after the commit; the call is
    stored and applied by then, so it is logged rather than reported as a storage failure.
    """
    committed = []
    try:
        with busy.write_transaction():
            transaction.on_commit(lambda: committed.append(True), using=db_alias())
            work()
    except Exception:
        if not committed:
            raise
        logger.exception("An on-commit hook failed after a call was stored")


@schema.dlr_schema
class DeliveryReportView(Receiver):
    """DLRs for one message, on the URL made by :func:`~d7sms.webhook_urls.dlr_url`."""

    kind = "dlr"
    http_method_names = ["get", "post"]

    def token_subject(self, message_id, **kwargs):
        return "dlr", message_id

    def get(self, request, message_id, token):
        return self.respond(request, message_id=message_id)

    def post(self, request, message_id, token):
        return self.respond(request, message_id=message_id)

    def receive(self, params, addr, message_id=None):
        report = parsing.parse_dlr(params)
        dlr.receive(params, report, message_id=message_id, method=self.request.method, remote_addr=addr)

    def store_raw(self, params, problem, addr, message_id=None):
        dlr.store_raw(params, problem, message_id=message_id, method=self.request.method, remote_addr=addr)


@schema.any_dlr_schema
class AnyDeliveryReportView(DeliveryReportView):
    """DLRs for any message, matched by D7 id, on :func:`~d7sms.webhook_urls.any_dlr_url`."""

    kind = "dlr-any"

    def token_subject(self, **kwargs):
        return "dlr-any", webhook_urls.ANY_DLR_KEY

    def get(self, request, token):
        return self.respond(request)

    def post(self, request, token):
        return self.respond(request)


class BatchCallbackReceiver(Receiver):
    """A D7 batch's callback or errback for one message of a sendout."""

    http_method_names = ["get"]
    # D7 never sends it again: wait longer, and keep it for housekeeping rather than refuse it.
    patience = 20.0
    unapplied = (callbacks.NOT_APPLIED_YET, 200)

    def token_subject(self, sendout_key, **kwargs):
        return self.kind, sendout_key

    def get(self, request, sendout_key, token):
        return self.respond(request, sendout_key=sendout_key)

    def receive(self, params, addr, sendout_key=None):
        callback = parsing.parse_callback(params, self.kind)
        callbacks.receive(self.kind, sendout_key, params, callback, remote_addr=addr)

    def store_raw(self, params, problem, addr, sendout_key=None):
        callbacks.store_raw(self.kind, sendout_key, params, problem, remote_addr=addr)


@schema.callback_schema
class CallbackView(BatchCallbackReceiver):
    """Batch callback: one message of a sendout was submitted, ``statusText`` holds its id."""

    kind = BatchCallback.Kind.CALLBACK


@schema.errback_schema
class ErrbackView(BatchCallbackReceiver):
    """Batch errback: one message of a sendout could not be submitted."""

    kind = BatchCallback.Kind.ERRBACK
