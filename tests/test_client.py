"""D7Client over real HTTP: the provider's examples against the sandbox, every error class,
transport failures, and the answer shapes only a scripted server can produce."""

import base64
import datetime
import json
import logging
import pickle
import socket
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from d7sms import errors
from d7sms.client import Balance, BatchResult, D7Client, SendResult, _BasicAuth
from d7sms.encoding import message_payload
from d7sms.errors import (
    CredentialsRejected,
    D7Error,
    InvalidRequest,
    NoCredit,
    NoRoute,
    NotSent,
    OutcomeUnknown,
    RateLimited,
    ServerError,
)

SECRET = "Sup3r-Secret-pw"
TOKEN = base64.b64encode(f"foo:{SECRET}".encode()).decode()
# The sandbox throws DLRs and callbacks at these; a closed local port fails fast.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture
def client(sandbox):
    with D7Client(sandbox.url, "foo", "bar", read_timeout=5) as c:
        yield c


@pytest.fixture
def make_sandbox():
    from d7sms.sandbox import Sandbox, SandboxUser

    started = []

    def make(*users, **kwargs):
        users = users or (SandboxUser("foo", SECRET, Decimal("100")),)
        sb = Sandbox(host="127.0.0.1", port=0, users=list(users), dlr_retries=0, **kwargs).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


def fault_client(sandbox, fault, **kwargs):
    """A client whose every request carries ``X-Sandbox-Fault: <fault>``."""
    session = requests.Session()
    session.headers["X-Sandbox-Fault"] = fault
    return D7Client(sandbox.url, "foo", "bar", session=session, **kwargs)


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the provider's examples, replayed ---------------------------------------------------


def test_send_example(client, sandbox):
    result = client.send(
        19012233451, sender="D7sms", content="Hello", dlr="yes", dlr_url=f"{NOWHERE}/dlr_receiver.php", dlr_level=3
    )
    assert isinstance(result, SendResult) and len(result.message_id) == 36
    [accepted] = sandbox.accepted()
    assert accepted["id"] == result.message_id
    assert str(accepted["to"]) == "19012233451"
    assert (accepted["from"], accepted["content"]) == ("D7sms", "Hello")
    assert accepted["dlr_url"] == f"{NOWHERE}/dlr_receiver.php"
    assert int(accepted["dlr_level"]) == 3


def test_send_binary_arabic_example(client, sandbox):
    result = client.send("971509001234", sender="D7sms", coding=8, hex_content="0623063106460628")
    [accepted] = sandbox.accepted()
    assert accepted["id"] == result.message_id
    assert accepted["hex_content"].lower() == "0623063106460628"
    assert int(accepted["coding"]) == 8


def test_non_gsm_text_through_message_payload(client, sandbox):
    text = "Привет 😀"
    client.send("4912345678", **message_payload(text))
    [accepted] = sandbox.accepted()
    assert int(accepted["coding"]) == 8
    assert bytes.fromhex(accepted["hex_content"]).decode("utf-16-be") == text


def test_sendbatch_same_content_to_three(client, sandbox):
    to = ["971509001001", "971549001002", "971559001003"]
    result = client.sendbatch([{"to": to, "content": "Same content goes to 3 numbers", "from": "D7sms"}])
    assert isinstance(result, BatchResult)
    assert (result.message_count, result.expected_count, result.scheduled) == (3, 3, None)
    assert sandbox.wait_idle(5)
    accepted = sandbox.accepted()
    assert sorted(str(m["to"]) for m in accepted) == to
    assert {m["batch_id"] for m in accepted} == {result.batch_id}


def test_sendbatch_binary_example(client, sandbox):
    to = ["971509001001", "971504001002", "971505001003"]
    result = client.sendbatch([{"to": to, "hex_content": "0623063106460628", "coding": 8}])
    assert result.message_count == 3
    assert sandbox.wait_idle(5)
    assert {m["hex_content"].lower() for m in sandbox.accepted()} == {"0623063106460628"}


EXAMPLE_1 = [
    {"from": "Brand1", "to": ["55555551", "55555552", "55555553"], "content": "Message 1 goes to 3 numbers"},
    {"from": "Brand2", "to": ["33333331", "33333332", "33333333"], "content": "Message 2 goes to 3 numbers"},
    {"from": "Brand2", "to": "7777771", "content": "Message 3 goes to 1 number"},
]


def test_batch_example_1_different_messages(client, sandbox):
    result = client.sendbatch(EXAMPLE_1)
    assert (result.message_count, result.expected_count) == (7, 7)
    assert sandbox.wait_idle(5)
    senders = {str(m["to"]): m["from"] for m in sandbox.accepted()}
    assert senders["55555552"] == "Brand1" and senders["7777771"] == "Brand2"


def test_batch_example_2_globals(client, sandbox):
    messages = [
        EXAMPLE_1[0],
        {"to": EXAMPLE_1[1]["to"], "content": EXAMPLE_1[1]["content"]},
        {"to": "7777771", "content": "Message 3 goes to 1 number"},
    ]
    result = client.sendbatch(
        messages, globals={"from": "Brand2", "dlr_level": 3, "dlr": True, "dlr-url": f"{NOWHERE}/url"}
    )
    assert result.message_count == 7
    assert sandbox.wait_idle(5)
    accepted = {str(m["to"]): m for m in sandbox.accepted()}
    assert accepted["55555551"]["from"] == "Brand1"  # a message's own value wins
    assert accepted["33333333"]["from"] == "Brand2" and accepted["7777771"]["from"] == "Brand2"
    assert {int(m["dlr_level"]) for m in accepted.values()} == {3}
    assert {m["dlr_url"] for m in accepted.values()} == {f"{NOWHERE}/url"}


def test_batch_example_3_callbacks(client, sandbox):
    result = client.sendbatch(
        [
            {"to": ["55555551", "55555552", "55555553"], "content": "Hello world !"},
            {"to": "7777771", "content": "Holà !"},
        ],
        callback_url=f"{NOWHERE}/successful_batch",
        errback_url=f"{NOWHERE}/errored_batch",
    )
    assert result.message_count == 4
    assert sandbox.wait_idle(5)
    calls = sandbox.deliveries(kind="callback")
    assert len(calls) == 4
    assert {c["url"].split("?")[0] for c in calls} == {f"{NOWHERE}/successful_batch"}
    assert {c["params"]["batchId"] for c in calls} == {result.batch_id}


# Times are built when the test runs, not at collection: a long suite would age them.
_SCHEDULES = {
    "relative": (lambda: "86400s", 86400),
    "timedelta": (lambda: datetime.timedelta(hours=1), 3600),
    "aware-datetime": (lambda: datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2), 7200),
    "absolute-local": (
        lambda: (datetime.datetime.now() + datetime.timedelta(hours=3)).strftime("%Y-%m-%d %H:%M:%S"),
        10800,
    ),
}


@pytest.mark.parametrize("kind", list(_SCHEDULES))
def test_batch_scheduling(client, sandbox, kind):
    make, expected = _SCHEDULES[kind]
    schedule_at = make()
    result = client.sendbatch([{"to": "7777771", "content": "Good morning !"}], schedule_at=schedule_at)
    assert result.message_count == 1
    assert result.scheduled == pytest.approx(expected, abs=60)


def test_balance_and_charging(client):
    assert client.balance().balance == Decimal("100")
    client.send("4912345678", content="x")
    assert client.balance().balance == Decimal("99.99")


def test_balance_nd(make_sandbox):
    from d7sms.sandbox import SandboxUser

    sb = make_sandbox(SandboxUser("foo", SECRET, None))
    with D7Client(sb.url, "foo", SECRET) as c:
        assert c.balance() == Balance(None, None)


def test_ping(client):
    assert client.ping() is True
    assert D7Client(f"http://127.0.0.1:{closed_port()}", "foo", "bar").ping() is False


def test_from_settings(d7_settings):
    with D7Client.from_settings() as c:
        assert c.base_url == d7_settings.D7SMS["BASE_URL"]
        assert c.send("4912345678", content="hi").message_id


# -- errors from the sandbox ---------------------------------------------------------------


def test_no_auth_is_rejected(client, monkeypatch):
    monkeypatch.setattr(_BasicAuth, "__call__", lambda self, request: request)  # no header at all
    with pytest.raises(CredentialsRejected) as info:
        client.send("4912345678", content="x")
    assert info.value.status_code == 401


def test_garbled_auth_is_rejected(client):
    client._auth.header = "Basic %%%not-base64%%%"
    with pytest.raises(CredentialsRejected) as info:
        client.send("4912345678", content="x")
    assert info.value.status_code == 401


def test_token_without_colon_is_a_server_error(client):
    # The real server cannot unpack such a token and answers a bare 500.
    client._auth.header = "Basic " + base64.b64encode(b"no-colon").decode()
    with pytest.raises(ServerError) as info:
        client.send("4912345678", content="x")
    assert info.value.status_code == 500


@pytest.mark.parametrize("call, status", [("send", 403), ("sendbatch", 412), ("balance", 403)])
def test_wrong_password(sandbox, call, status):
    c = D7Client(sandbox.url, "foo", SECRET)
    with pytest.raises(CredentialsRejected) as info:
        if call == "send":
            c.send("4912345678", content="x")
        elif call == "sendbatch":
            c.sendbatch([{"to": "4912345678", "content": "x"}])
        else:
            c.balance()
    assert info.value.status_code == status
    assert not info.value.retryable
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


def test_no_credit(make_sandbox):
    from d7sms.sandbox import SandboxUser

    sb = make_sandbox(SandboxUser("foo", SECRET, Decimal("0.005")))
    with D7Client(sb.url, "foo", SECRET) as c, pytest.raises(NoCredit) as info:
        c.send("4912345678", content="x")
    assert info.value.status_code == 403
    assert "Cannot charge submit_sm" in info.value.provider_text
    assert str(info.value).startswith("D7 account has no credit")


def test_invalid_coding(client):
    with pytest.raises(InvalidRequest) as info:
        client.send("4912345678", content="x", coding=99)
    assert info.value.status_code == 400 and info.value.reached_provider is True
    assert "coding" in info.value.provider_text
    assert not info.value.provider_text.startswith("Error")


def test_no_route(client):
    with pytest.raises(NoRoute) as info:
        client.send("4912345677", content="x")
    assert info.value.status_code == 412
    assert info.value.provider_text == "No route found"


def test_server_error_via_header(sandbox):
    with pytest.raises(ServerError) as info:
        fault_client(sandbox, "500").send("4912345678", content="x")
    assert info.value.status_code == 500 and info.value.retryable
    assert not isinstance(info.value, RateLimited)


def test_server_error_via_rate(sandbox, client):
    sandbox.set_faults(error_500_rate=1.0)
    with pytest.raises(ServerError):
        client.balance()


def test_rate_limited(sandbox):
    with pytest.raises(RateLimited) as info:
        fault_client(sandbox, "429").sendbatch([{"to": "4912345678", "content": "x"}])
    assert info.value.status_code == 429 and info.value.retryable
    assert isinstance(info.value, ServerError)
    assert info.value.retry_after == 1.0  # the sandbox sends Retry-After: 1


def test_malformed_200_is_outcome_unknown(sandbox):
    with pytest.raises(OutcomeUnknown) as info:
        fault_client(sandbox, "malformed").send("4912345678", content="x")
    assert info.value.status_code == 200 and not info.value.retryable


def test_dropped_connection_is_outcome_unknown(sandbox):
    with pytest.raises(OutcomeUnknown) as info:
        fault_client(sandbox, "drop").send("4912345678", content="x")
    assert not info.value.retryable


def test_read_timeout_is_outcome_unknown(sandbox):
    c = fault_client(sandbox, "latency=1500", read_timeout=0.3)
    with pytest.raises(OutcomeUnknown) as info:
        c.send("4912345678", content="x")
    assert info.value.status_code is None and info.value.reached_provider is None
    assert not info.value.retryable


def test_refused_connection_is_not_sent():
    c = D7Client(f"http://127.0.0.1:{closed_port()}", "foo", SECRET)
    with pytest.raises(NotSent) as info:
        c.send("4912345678", content="x")
    assert info.value.retryable and info.value.reached_provider is False
    assert "refused" in str(info.value).lower()


def test_client_refuses_messages_the_server_would_skip(client, sandbox):
    messages = [
        {"to": "4912345671", "content": "fine"},
        {"content": "no destination"},
        {"to": "4912345672"},
        {"to": [], "content": "empty list"},
        {"to": "4912345673", "hex_content": "0041"},
    ]
    with pytest.raises(InvalidRequest) as info:
        client.sendbatch(messages)
    assert info.value.bad_indexes == (1, 2, 3)
    assert info.value.reached_provider is False and info.value.status_code is None
    assert "message 1: no 'to'" in str(info.value)
    assert sandbox.accepted() == []
    # Globals complete what a message lacks.
    result = client.sendbatch(messages[1:3], globals={"to": "4912345674", "content": "from globals"})
    assert result.message_count == result.expected_count == 2
    assert sandbox.wait_idle(5)
    assert {m["content"] for m in sandbox.accepted()} == {"no destination", "from globals"}


def test_send_refuses_bad_arguments(client, sandbox):
    for kwargs in ({"to": None, "content": "x"}, {"to": ["1", "2"], "content": "x"}, {"to": "1"},
                   {"to": "1", "content": "x", "hex_content": "0041"}):
        with pytest.raises(InvalidRequest):
            client.send(**kwargs)
    assert sandbox.accepted() == []


# -- secrets -------------------------------------------------------------------------------


def test_password_never_shown(make_sandbox, caplog):
    sb = make_sandbox()
    caplog.set_level(logging.DEBUG, logger="d7sms.client")
    c = D7Client(sb.url, "foo", SECRET, read_timeout=0.3)
    raised = []
    wrong = D7Client(sb.url, "foo", "wrong-" + SECRET)
    for call in (
        lambda: wrong.send("4912345678", content="x"),
        lambda: wrong.sendbatch([{"to": "4912345678", "content": "x"}]),
        lambda: fault_client(sb, "latency=1000", read_timeout=0.2).send("1", content="x"),
        lambda: D7Client(f"http://127.0.0.1:{closed_port()}", "foo", SECRET).send("1", content="x"),
        lambda: c.send("4912345677", content="x"),
        lambda: c.sendbatch([{"content": "x"}]),
    ):
        with pytest.raises(D7Error) as info:
            call()
        raised.append(info.value)
    assert c.send("4912345678", content="ok").message_id
    assert "POST" in caplog.text and "-> 200" in caplog.text
    shown = [repr(c), str(c), repr(c._auth), caplog.text]
    shown += [text for e in raised for text in (str(e), repr(e), e.provider_text)]
    for text in shown:
        assert SECRET not in text and TOKEN not in text
    assert "username:foo" in str(raised[0])  # the username is fine to show


def test_credentials_in_base_url_are_refused():
    with pytest.raises(ValueError) as info:
        D7Client(f"http://foo:{SECRET}@127.0.0.1:9", "foo", SECRET)
    assert SECRET not in str(info.value)


def test_errors_pickle():
    error = RateLimited("slow down", status_code=429, reached_provider=True, retry_after=3.0)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.retry_after, copy.status_code, str(copy)) == (RateLimited, 3.0, 429, str(error))
    bad = pickle.loads(pickle.dumps(InvalidRequest("x", reached_provider=False, bad_indexes=[2])))
    assert bad.bad_indexes == (2,) and bad.reached_provider is False


# -- answer shapes the sandbox does not produce: a scripted server --------------------------


class Scripted:
    """A loopback server answering each request with the next scripted (status, body, headers)."""

    def __init__(self):
        self.answers, self.requests = [], []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                status, payload, headers = outer.answers.pop(0)
                if status is None:  # close without answering
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, status, body, **headers):
        self.answers.append((status, body, headers))


@pytest.fixture
def scripted():
    server = Scripted()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def sclient(scripted):
    with D7Client(scripted.url, "foo", SECRET, read_timeout=5) as c:
        yield c


UUID = "c723d42a-c3ee-452c-940b-3d8e8b944868"


@pytest.mark.parametrize("data", [f'Success "{UUID}"', f'Success "{UUID}'])
def test_send_id_with_or_without_closing_quote(scripted, sclient, data):
    scripted.answer(200, {"data": data})
    assert sclient.send("1", content="x") == SendResult(UUID)


def test_request_shape(scripted, sclient):
    scripted.answer(200, {"data": f'Success "{UUID}"'})
    sclient.send(1, sender="D7sms", content="Hi", dlr=True, dlr_url="http://x/d", dlr_level=3, dlr_method="POST",
                 validity_period=60, priority=None)
    method, path, headers, body = scripted.requests[0]
    assert (method, path) == ("POST", "/secure/send")
    assert headers["Content-Type"] == "application/json" and headers["Accept"] == "application/json"
    assert headers["Authorization"] == f"Basic {TOKEN}"
    assert json.loads(body) == {
        "to": 1, "from": "D7sms", "content": "Hi", "dlr": "yes", "dlr-url": "http://x/d", "dlr-level": 3,
        "dlr-method": "POST", "validity-period": 60,
    }


def test_batch_request_shape_and_count_mismatch(scripted, sclient):
    scripted.answer(200, {"data": {"batchId": "b1", "messageCount": 2, "scheduled": "3599.56s"}})
    result = sclient.sendbatch(
        [{"to": ("1", "2"), "sender": "A", "hex-content": "0041", "coding": 8}, {"to": 3, "content": "x"}],
        globals={"dlr_url": "http://x/d", "dlr_method": "GET"},
        callback_url="http://x/ok",
        schedule_at="3600s",
    )
    assert result == BatchResult("b1", 2, 3599.56, 3)
    body = json.loads(scripted.requests[0][3])
    assert body == {
        "messages": [{"to": ["1", "2"], "from": "A", "hex_content": "0041", "coding": 8}, {"to": 3, "content": "x"}],
        "globals": {"dlr-url": "http://x/d", "dlr-method": "GET"},
        "batch_config": {"callback_url": "http://x/ok", "schedule_at": "3600s"},
    }


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"balance": "10.23", "sms_count": "ND"}, Balance(Decimal("10.23"), None)),
        ({"balance": 100.0, "sms_count": 42}, Balance(Decimal("100.0"), 42)),
        ({"balance": 0.1, "sms_count": "7"}, Balance(Decimal("0.1"), 7)),
        ({"balance": "ND", "sms_count": "ND"}, Balance(None, None)),
    ],
)
def test_balance_shapes(scripted, sclient, data, expected):
    scripted.answer(200, {"data": data})
    assert sclient.balance() == expected


@pytest.mark.parametrize(
    "status, body, kind, text",
    [
        (403, {"message": 'Error "Authentication failure for username:foo"'}, CredentialsRejected,
         "Authentication failure for username:foo"),
        (412, {"title": "Authentication failed", "description": "bad", "link": {}}, CredentialsRejected,
         "Authentication failed: bad"),
        (403, {"message": 'Error "Authorization failed for username:foo'}, InvalidRequest,
         "Authorization failed for username:foo"),
        (412, {"title": "Unparseable JSON"}, InvalidRequest, "Unparseable JSON"),
        (415, {"title": "Not acceptable"}, InvalidRequest, "Not acceptable"),
        (405, b"Method Not Allowed", InvalidRequest, "Method Not Allowed"),
        # Refusals that certainly mean "not taken": a 503, or a 5xx in Jasmin's own shapes.
        (503, b"<html>busy</html>", ServerError, "<html>busy</html>"),
        (500, {"title": "Jasmin httpapi connection error"}, ServerError, "Jasmin httpapi connection error"),
        (500, {"message": 'Error "Cannot connect'}, ServerError, "Cannot connect"),
        # Anything else from a 5xx may come from something in between, after D7 acted.
        (500, [1, 2], OutcomeUnknown, "[1, 2]"),
        (500, b"<html>Internal Server Error</html>", OutcomeUnknown, "<html>Internal Server Error</html>"),
        (502, b"<html>Bad Gateway</html>", OutcomeUnknown, "<html>Bad Gateway</html>"),
        (504, b"<html>Gateway Time-out</html>", OutcomeUnknown, "<html>Gateway Time-out</html>"),
        (504, {"title": "Gateway Timeout"}, OutcomeUnknown, "Gateway Timeout"),
        (599, b"", OutcomeUnknown, ""),
    ],
)
def test_error_shapes(scripted, sclient, status, body, kind, text):
    scripted.answer(status, body)
    with pytest.raises(kind) as info:
        sclient.send("1", content="x")
    assert type(info.value) is kind
    assert info.value.provider_text == text and info.value.status_code == status


def test_retry_after_kept(scripted, sclient):
    scripted.answer(429, {"title": "Too many requests"}, **{"Retry-After": "7"})
    with pytest.raises(RateLimited) as info:
        sclient.balance()
    assert info.value.retry_after == 7.0
    assert str(info.value) == "D7 rate limit reached (429): Too many requests"


@pytest.mark.parametrize("body", [b"not json", b'{"data": "Failure"}', b'{"data": {"batchId": "x"}}', b"[]"])
def test_unreadable_success_is_outcome_unknown(scripted, sclient, body):
    scripted.answer(200, body)
    with pytest.raises(OutcomeUnknown) as info:
        sclient.send("1", content="x")
    assert info.value.reached_provider is True


def test_connection_closed_after_request_is_outcome_unknown(scripted, sclient):
    scripted.answer(None, b"")
    with pytest.raises(OutcomeUnknown):
        sclient.send("1", content="x")
    assert len(scripted.requests) == 1  # never repeated by the HTTP layer


def test_error_hierarchy():
    assert issubclass(RateLimited, ServerError) and RateLimited.retryable
    assert issubclass(NotSent, errors.TransportError) and NotSent.retryable
    assert issubclass(OutcomeUnknown, errors.TransportError) and not OutcomeUnknown.retryable
    for kind in (CredentialsRejected, NoCredit, InvalidRequest, NoRoute):
        assert issubclass(kind, D7Error) and not kind.retryable
