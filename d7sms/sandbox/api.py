"""The REST layer: content negotiation, Basic auth, JSON bodies, batches and their schedules.

Error bodies come in the server's two shapes: ``{"message": "Error \\"..."}`` relayed from the
sending core (its closing quote stripped, as the real server does) and the REST layer's own
``{"title": ..., "description": ...}``.
"""

import base64
import binascii
import json
import re
import time
import uuid
from datetime import datetime
from urllib.parse import parse_qsl

from .accounts import format_amount
from .gateway import Rejected, normalise
from .outcomes import outcome_for
from .parts import HexContentError, count_parts, decode_hex

DOCS = "http://docs.jasminsms.com/en/latest/apis/rest/index.html"
JSON_TYPES = ("application/json", "application/*", "*/*")
_SECONDS = re.compile(r"(\d+(?:\.\d+)?)s")
_PROVIDE_TOKEN = "Please provide a valid Basic auth token"
_QUALITY = re.compile(r"q\s*=\s*(\d+(?:\.\d*)?|\.\d+)")


class Response:
    """Status, JSON-encoded body, extra headers and content type of one answer."""

    __slots__ = ("status", "body", "headers", "content_type")

    def __init__(self, status, payload, headers=(), content_type="application/json"):
        self.status = status
        self.body = json.dumps(payload).encode() if payload is not None else b""
        self.headers = headers
        self.content_type = content_type


class RestError(Exception):
    """An error of the REST layer itself, answered as ``{"title", "description"[, "link"]}``."""

    def __init__(self, status, title, description=None, link=False, headers=()):
        super().__init__(title)
        payload = {"title": title}
        if description is not None:
            payload["description"] = description
        if link:
            payload["link"] = {"text": "Documentation related to this error", "href": DOCS, "rel": "help"}
        self.response = Response(status, payload, headers)


def server_error():
    """The answer to a request the server chokes on (e.g. a JSON body that is not an object)."""
    return RestError(500, "500 Internal Server Error")


def accepts_json(accept):
    """True when an ``Accept`` header value (None: absent) admits application/json."""
    if accept is None:
        return True
    for item in accept.split(","):
        media, _, rest = item.partition(";")
        if media.strip().lower() in JSON_TYPES:
            q = _QUALITY.search(rest)
            if q is None or float(q.group(1)) > 0:
                return True
    return False


def credentials(authorization):
    """(username, password) from an Authorization header, or raises RestError like the server."""
    if authorization is None:
        raise RestError(401, "Authentication required", _PROVIDE_TOKEN, link=True)
    token = authorization.split(" ")
    if len(token) != 2:
        # The real server echoes the whole header here; the sandbox names only the scheme so
        # that a malformed header never carries credentials into a log.
        raise RestError(401, f"Invalid token: {token[0][:20]}", _PROVIDE_TOKEN, link=True)
    try:
        decoded = base64.b64decode(token[1]).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise RestError(401, f"Invalid token: {exc}", _PROVIDE_TOKEN, link=True) from exc
    pair = decoded.split(":")
    if len(pair) != 2:
        # The real server fails to unpack such a token and answers with a bare 500.
        raise server_error()
    return pair[0], pair[1]


def decode_json(body):
    """The JSON object in ``body``: 412 when unparseable, 500 when JSON but not an object."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        text = body.decode("utf-8", "replace")
        raise RestError(412, "Cannot parse JSON data", f"Got unparseable json data: {text}") from exc
    if not isinstance(data, dict):
        raise server_error()
    return data


def parse_schedule_at(value, now=None):
    """Seconds to wait before sending a batch, from ``schedule_at``; None means now."""
    if value is None:
        return 0
    if not isinstance(value, str):
        raise server_error()
    now = now or datetime.now()
    try:
        when = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        match = _SECONDS.fullmatch(value)
        if match is None:
            raise RestError(412, "Cannot parse scheduled_at value", (
                f"Got unknown format: {value}, correct formats are 'YYYY-MM-DD mm:hh:ss' or number of seconds"
            )) from None
        number = match.group(1)
        return float(number) if "." in number else int(number)
    if when < now:
        raise RestError(412, "Cannot schedule batch in past date", f"Invalid past date given: {when}")
    return round((when - now).total_seconds(), 2)


def expand_batch(data):
    """The batch's messages as single-destination params (globals applied, incomplete ones dropped)."""
    messages = data.get("messages", [])
    defaults = data.get("globals", {})
    if not isinstance(messages, list) or not isinstance(defaults, dict):
        raise server_error()
    expanded = []
    for item in messages:
        if not isinstance(item, dict):
            raise server_error()
        params = {**defaults, **item}
        keys = {k.replace("_", "-") for k in params}
        if "to" not in keys or ("content" not in keys and "hex-content" not in keys):
            continue  # the server skips these silently and leaves them out of messageCount
        destinations = params["to"]
        if isinstance(destinations, list):
            expanded.extend({**params, "to": to} for to in destinations)
        else:
            expanded.append(params)
    return expanded


class RestApi:
    """The /ping, /secure/* resources, answering a parsed request with a Response."""

    def __init__(self, accounts, gateway, scheduler, store):
        self.accounts = accounts
        self.gateway = gateway
        self.scheduler = scheduler
        self.store = store
        self.routes = {
            "/ping": {"GET": self.ping},
            "/secure/balance": {"GET": self.balance},
            "/secure/rate": {"GET": self.rate},
            "/secure/send": {"POST": self.send},
            "/secure/sendbatch": {"POST": self.sendbatch},
        }

    def handle(self, method, path, query, headers, body):
        """Answer one request to the API; never raises for a client's mistake."""
        try:
            if not accepts_json(headers.get("Accept")):
                raise RestError(415, "Unsupported media type", "This API supports JSON media type only.",
                                link=True)
            creds = credentials(headers.get("Authorization")) if path.startswith("/secure/") else None
            resource = self.routes.get(path)
            if resource is None:
                raise RestError(404, "404 Not Found")
            handler = resource.get(method)
            if handler is None:
                raise RestError(405, "405 Method Not Allowed", headers=(("Allow", ", ".join(resource)),))
            return handler(creds, query, body)
        except RestError as exc:
            return exc.response

    @staticmethod
    def _relay(exc):
        # The sending core's text, wrapped like the real server relays it.
        return Response(exc.status, {"message": f'Error "{exc.text}'})

    def ping(self, creds, query, body):
        """GET /ping."""
        return Response(200, {"data": "Jasmin/PONG"})

    def balance(self, creds, query, body):
        """GET /secure/balance: balance as a string like the provider's page; ``"ND"`` without quota."""
        username, password = creds
        if not self.accounts.authenticate(username, password):
            # The balance endpoint relays its error without the `Error "` prefix.
            return Response(403, {"message": f"Authentication failure for username:{username}"})
        amount, count = self.accounts.balance(username), self.accounts.sms_count(username)
        sms_count = "ND" if count is None else count
        return Response(200, {"data": {"balance": format_amount(amount), "sms_count": sms_count}})

    def rate(self, creds, query, body):
        """GET /secure/rate: price of one message, params as JSON body or query string."""
        username, password = creds
        params = normalise(decode_json(body) if body.strip() else dict(parse_qsl(query)))
        if not self.accounts.authenticate(username, password):
            return Response(403, {"message": f"Authentication failure for username:{username}"})
        to = params.get("to")
        if to is None:
            return Response(400, {"message": "Mandatory argument [to] is not found."})
        if not outcome_for(to).routed:
            return Response(412, {"message": "No route found"})
        coding = params.get("coding", "0")
        coding = int(coding) if coding.isdigit() else 0
        try:
            if "hex-content" in params:
                n = count_parts(coding, raw=decode_hex(params["hex-content"]))
            else:
                n = count_parts(coding, content=params.get("content", ""))
        except HexContentError as exc:
            return Response(400, {"message": f"Unknown error: {exc}"})
        unit_rate = float(self.gateway.price_per_part)
        return Response(200, {"data": {"unit_rate": unit_rate, "submit_sm_count": n}})

    def send(self, creds, query, body):
        """POST /secure/send: one message to one destination (the first, if ``to`` is a list)."""
        data = decode_json(body)
        self.store.count("send_requests")
        try:
            message = self.gateway.submit(creds[0], creds[1], data)
        except Rejected as exc:
            self.store.count("send_rejected")
            return self._relay(exc)
        return Response(200, {"data": f'Success "{message.id}'})

    def sendbatch(self, creds, query, body):
        """POST /secure/sendbatch: queue the batch for the background worker, answer at once."""
        username, password = creds
        if not self.accounts.authenticate(username, password):
            raise RestError(412, "Authentication failed", f"Authentication failure for username:{username}")
        data = decode_json(body)
        config = data.get("batch_config", {})
        if not isinstance(config, dict):
            raise server_error()
        countdown = parse_schedule_at(config.get("schedule_at"))
        messages = expand_batch(data)
        batch_id = str(uuid.uuid4())
        send_at = time.time() + countdown if countdown > 0 else None
        self.store.count("batches")
        self.scheduler.submit(countdown, self.gateway.run_batch, username, password, batch_id,
                              config, messages, send_at)
        payload = {"data": {"batchId": batch_id, "messageCount": len(messages)}}
        if countdown > 0:
            payload["data"]["scheduled"] = f"{countdown}s"
        return Response(200, payload)
