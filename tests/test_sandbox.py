"""The sandbox answers like the real D7 REST API: over real HTTP on loopback, as clients see it."""

import base64
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from d7sms.sandbox import Sandbox, SandboxUser
from d7sms.sandbox.cli import build_parser, parse_user, sandbox_from_options

ROOT = Path(__file__).resolve().parent.parent
AUTH = ("foo", "bar")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NO_CREDIT = "Cannot charge submit_sm, check RouterPB log file for details"


@pytest.fixture
def sb():
    """Sandbox with foo:bar (100) and poor:man (0.01), fast DLRs and retries."""
    sandbox = Sandbox(
        users=[SandboxUser("foo", "bar", Decimal("100")), SandboxUser("poor", "man", Decimal("0.01"))],
        dlr_retries=3, dlr_retry_delay=0.05, dlr_delay=0.02, callback_timeout=2.0,
    ).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def api(sb):
    """A requests session with foo:bar pointed at the sandbox: ``api.post("/secure/send", json=...)``."""
    session = requests.Session()
    session.auth = AUTH
    base = sb.url

    class Api:
        def get(self, path, **kw):
            return session.get(base + path, timeout=10, **kw)

        def post(self, path, **kw):
            return session.post(base + path, timeout=10, **kw)

    yield Api()
    session.close()


class Receiver:
    """A client's callback/DLR endpoint: records every call; answers from a per-path script."""

    def __init__(self):
        self.calls = []
        self.script = {}  # path -> list of (status, body) to answer in turn, then the default
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                parts = urlsplit(self.path)
                call = {
                    "method": self.command, "path": parts.path,
                    "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                    "form": {k: v[0] for k, v in parse_qs(body).items()},
                    "content_type": self.headers.get("Content-Type"),
                    "authorization": self.headers.get("Authorization"),
                }
                with receiver.lock:
                    receiver.calls.append(call)
                    queue = receiver.script.get(parts.path) or []
                    status, answer = queue.pop(0) if queue else (200, b"ACK/Jasmin\n")
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def on(self, path, *answers):
        """Answer the next calls to ``path`` with ``answers`` ((status, body) pairs)."""
        self.script[path] = list(answers)

    def hits(self, path):
        with self.lock:
            return [c for c in self.calls if c["path"] == path]

    def params(self, path):
        """Params of each call to ``path``, from the query string or the form body."""
        return [{**c["query"], **c["form"]} for c in self.hits(path)]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def raw(sb, request_bytes):
    """Send raw HTTP bytes (as curl would) and return (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", sb.port), timeout=10) as sock:
        sock.sendall(request_bytes)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def curl(sb, method, path, data=None, auth="Zm9vOmJhcg=="):
    """Replay ``curl -X METHOD -H 'Authorization: Basic ...' [-d DATA] URL`` byte for byte."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{sb.port}", "User-Agent: curl/8.5.0",
             "Accept: */*", f"Authorization: Basic {auth}"]
    body = (data or "").encode()
    if data is not None:
        lines += [f"Content-Length: {len(body)}", "Content-Type: application/x-www-form-urlencoded"]
    return raw(sb, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)


# --- The provider's curl examples, verbatim where they are valid ---------------------------

def test_curl_example_get_sendbatch_is_method_not_allowed(sb):
    status, headers, _ = curl(sb, "GET", "/secure/sendbatch")
    assert status == 405
    assert headers["Allow"] == "POST"


def test_curl_example_send(sb):
    data = """{
  "to": 19012233451,
  "from": "D7sms",
  "content": "Hello",
  "dlr": "yes",
  "dlr-url": "http://192.168.202.54/dlr_receiver.php",
  "dlr-level": 3
}"""
    status, headers, body = curl(sb, "POST", "/secure/send", data)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    # Byte for byte the page's format: the closing quote after the id is dropped.
    match = re.fullmatch(rb'\{"data": "Success \\"(' + UUID.encode() + rb')"\}', body)
    assert match, body
    [message] = sb.accepted()
    assert message["id"] == match.group(1).decode()
    assert (message["to"], message["from"], message["content"]) == ("19012233451", "D7sms", "Hello")
    assert (message["dlr"], message["dlr_level"], message["dlr_method"]) == (True, 3, "POST")


def test_curl_example_sendbatch_same_message_to_three(sb):
    data = """{
  "messages": [
    {
      "to": [
        "971509001001",
        "971549001002",
        "971559001003"
      ],
      "content": "Same content goes to 3 numbers",
      "from": "D7sms"
    }
  ]
}"""
    status, _, body = curl(sb, "POST", "/secure/sendbatch", data)
    assert status == 200
    assert re.fullmatch(rb'\{"data": \{"batchId": "' + UUID.encode() + rb'", "messageCount": 3\}\}', body), body
    assert sb.wait_idle(5)
    assert sorted(m["to"] for m in sb.accepted()) == ["971509001001", "971549001002", "971559001003"]


def test_curl_example_send_binary(sb):
    # The page writes "to": 971509001XXX, which is not JSON; the X's become digits here.
    data = '{\n  "to": 971509001123,\n  "from": "D7sms",\n  "coding": 8,\n  "hex_content": "0623063106460628"\n}'
    status, _, body = curl(sb, "POST", "/secure/send", data)
    assert status == 200, body
    [message] = sb.accepted()
    assert (message["coding"], message["hex_content"], message["parts"]) == (8, "0623063106460628", 1)


def test_curl_example_sendbatch_binary(sb):
    data = ('{"messages": [{"to": ["971509001001", "971504001002", "971505001003"],'
            ' "hex_content": "0623063106460628"}]}')
    status, _, body = curl(sb, "POST", "/secure/sendbatch", data)
    assert status == 200
    assert json.loads(body)["data"]["messageCount"] == 3


def test_curl_example_balance(sb):
    status, _, body = curl(sb, "GET", "/secure/balance")
    assert status == 200
    assert body == b'{"data": {"balance": "100.00", "sms_count": "ND"}}'


EXAMPLE_1 = {"messages": [
    {"from": "Brand1", "to": ["55555551", "55555552", "55555553"], "content": "Message 1 goes to 3 numbers"},
    {"from": "Brand2", "to": ["33333331", "33333332", "33333333"], "content": "Message 2 goes to 3 numbers"},
    {"from": "Brand2", "to": "7777771", "content": "Message 3 goes to 1 number"},
]}


def test_usage_example_1_different_messages(api, sb):
    assert api.post("/secure/sendbatch", json=EXAMPLE_1).json()["data"]["messageCount"] == 7
    assert sb.wait_idle(5)
    senders = {m["to"]: m["from"] for m in sb.accepted()}
    assert senders["55555552"] == "Brand1" and senders["33333333"] == "Brand2" and senders["7777771"] == "Brand2"


def test_usage_example_2_as_printed_is_not_json(sb):
    # The page's example 2 lacks a comma after "globals": the server cannot parse it.
    data = '{\n  "globals" : {\n    "from": "Brand2"\n  }\n  "messages": [{"to": "1", "content": "x"}]\n}'
    status, _, body = curl(sb, "POST", "/secure/sendbatch", data)
    assert status == 412
    assert json.loads(body)["title"] == "Cannot parse JSON data"


def test_usage_example_2_globals_inherited_and_overridden(api, sb, receiver):
    batch = {
        "globals": {"from": "Brand2", "dlr-level": 3, "dlr": "yes", "dlr-url": receiver.url + "/dlr"},
        "messages": [{**EXAMPLE_1["messages"][0]}, *[{k: v for k, v in m.items() if k != "from"}
                                                    for m in EXAMPLE_1["messages"][1:]]],
    }
    assert api.post("/secure/sendbatch", json=batch).json()["data"]["messageCount"] == 7
    assert sb.wait_idle(5)
    messages = {m["to"]: m for m in sb.accepted()}
    assert messages["55555551"]["from"] == "Brand1"  # the message's own value wins
    assert messages["33333332"]["from"] == "Brand2" and messages["7777771"]["from"] == "Brand2"
    assert all(m["dlr_level"] == 3 and m["dlr_url"] == receiver.url + "/dlr" for m in messages.values())
    assert len(receiver.hits("/dlr")) == 14


def test_usage_example_3_callbacks_and_errbacks_once_per_message(api, sb, receiver):
    batch = {
        "batch_config": {"callback_url": receiver.url + "/successful_batch",
                         "errback_url": receiver.url + "/errored_batch"},
        "messages": [{"to": ["55555551", "55555552", "55555553"], "content": "Hello world !"},
                     {"to": "7777777", "content": "Holà !"}],  # ends in 7: no route
    }
    data = api.post("/secure/sendbatch", json=batch).json()["data"]
    assert data["messageCount"] == 4
    assert sb.wait_idle(5)
    ids = {m["to"]: m["id"] for m in sb.accepted()}
    callbacks = receiver.params("/successful_batch")
    assert sorted(c["to"] for c in callbacks) == ["55555551", "55555552", "55555553"]
    for c in callbacks:
        assert c == {"batchId": data["batchId"], "to": c["to"], "status": "1",
                     "statusText": f'Success "{ids[c["to"]]}"'}
    assert receiver.params("/errored_batch") == [{
        "batchId": data["batchId"], "to": "7777777", "status": "0",
        "statusText": 'HTTPAPI error: Error "No route found',
    }]
    assert all(c["method"] == "GET" for c in receiver.calls)
    assert {d["kind"] for d in sb.deliveries()} == {"callback", "errback"}


def test_schedule_examples(api, sb):
    past = {"batch_config": {"schedule_at": "2017-11-15 09:00:00"}, "messages": [{"to": "7777771", "content": "x"}]}
    response = api.post("/secure/sendbatch", json=past)
    assert response.status_code == 412
    assert response.json()["title"] == "Cannot schedule batch in past date"
    later = {"batch_config": {"schedule_at": "86400s"}, "messages": [{"to": "7777771", "content": "Good morning !"}]}
    data = api.post("/secure/sendbatch", json=later).json()["data"]
    assert (data["messageCount"], data["scheduled"]) == (1, "86400s")
    assert sb.accepted() == []
    assert sb.wait_idle(0.2) is False  # a scheduled batch is pending work


# --- Errors, with the real server's status codes and bodies --------------------------------

def test_ping_needs_no_auth(sb):
    response = requests.get(sb.url + "/ping", timeout=5)
    assert (response.status_code, response.text) == (200, '{"data": "Jasmin/PONG"}')


@pytest.mark.parametrize("authorization, status, title", [
    (None, 401, "Authentication required"),
    ("Basic", 401, "Invalid token: Basic"),
    ("Basic abc", 401, "Invalid token: Incorrect padding"),
    ("Basic " + base64.b64encode(b"foo").decode(), 500, "500 Internal Server Error"),
])
def test_missing_or_undecodable_auth(sb, authorization, status, title):
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.post(sb.url + "/secure/send", json={"to": 1, "content": "x"}, headers=headers, timeout=5)
    assert response.status_code == status
    assert response.json()["title"].startswith(title)
    if status == 401:
        assert response.json()["description"] == "Please provide a valid Basic auth token"


def test_malformed_auth_header_is_not_echoed(sb):
    token = base64.b64encode(b"foo:bar").decode()
    response = requests.post(
        sb.url + "/secure/send", json={"to": 1, "content": "x"}, headers={"Authorization": f"Basic {token} x"}, timeout=5
    )
    assert response.status_code == 401
    assert token not in response.text


def test_wrong_credentials_per_endpoint(sb):
    bad = ("foo", "wrong")
    send = requests.post(sb.url + "/secure/send", json={"to": 1, "content": "x"}, auth=bad, timeout=5)
    assert send.status_code == 403
    assert send.text == '{"message": "Error \\"Authentication failure for username:foo"}'
    balance = requests.get(sb.url + "/secure/balance", auth=bad, timeout=5)
    assert (balance.status_code, balance.json()) == (403, {"message": "Authentication failure for username:foo"})
    batch = requests.post(sb.url + "/secure/sendbatch", json={"messages": []}, auth=bad, timeout=5)
    assert batch.status_code == 412
    assert batch.json()["title"] == "Authentication failed"


@pytest.mark.parametrize("accept, status", [
    ("text/html", 415), ("application/json;q=0", 415), ("application/json", 200),
    ("*/*", 200), ("text/html, application/*;q=0.5", 200),
])
def test_accept_header(sb, accept, status):
    response = requests.get(sb.url + "/secure/balance", auth=AUTH, headers={"Accept": accept}, timeout=5)
    assert response.status_code == status
    if status == 415:
        assert response.json()["title"] == "Unsupported media type"


def test_missing_accept_header_is_fine(sb):
    status, _, _ = raw(sb, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200


def test_wrong_method_and_unknown_path(api):
    assert api.get("/secure/send").status_code == 405
    assert api.post("/secure/balance").status_code == 405
    assert api.get("/secure/nothing").status_code == 404


def test_unparseable_and_non_object_json(api, sb):
    response = api.post("/secure/send", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 412
    assert response.json() == {"title": "Cannot parse JSON data", "description": "Got unparseable json data: {not json"}
    assert api.post("/secure/send", json=[1, 2]).status_code == 500
    assert api.post("/secure/sendbatch", json=[1, 2]).status_code == 500
    assert sb.accepted() == []


@pytest.mark.parametrize("params, text", [
    ({"content": "x"}, "Mandatory argument [to] is not found."),
    ({"to": [], "content": "x"}, "Mandatory argument [to] is not found."),
    ({"to": "44abc", "content": "x"}, "Argument [to] has an invalid value: [44abc]."),
    ({"to": 1}, "content or hex-content not present."),
    ({"to": 1, "content": "x", "hex_content": "41"}, "content and hex-content cannot be used both in same request."),
    ({"to": 1, "content": "x", "coding": 99}, "Argument [coding] has an invalid value: [99]."),
    ({"to": 1, "content": "x", "dlr-level": 4}, "Argument [dlr-level] has an invalid value: [4]."),
    ({"to": 1, "content": "x", "colour": "red"}, "Argument [colour] is unknown."),
])
def test_argument_errors(api, sb, params, text):
    response = api.post("/secure/send", json=params)
    assert response.status_code == 400
    assert response.json() == {"message": f'Error "{text}'}
    assert sb.accepted() == [] and sb.balance("foo") == Decimal("100")


def test_all_codings_0_to_14_are_valid(api):
    for coding in range(15):
        assert api.post("/secure/send", json={"to": 1, "content": "x", "coding": coding}).status_code == 200


def test_no_route_on_send(api, sb):
    response = api.post("/secure/send", json={"to": "+4915112345677", "content": "x"})
    assert (response.status_code, response.json()) == (412, {"message": 'Error "No route found'})
    assert sb.accepted() == [] and sb.balance("foo") == Decimal("100")


# --- Parameters ------------------------------------------------------------------------------

def test_underscore_and_dash_keys_are_the_same(api, sb, receiver):
    url = receiver.url + "/dlr"
    assert api.post("/secure/send", json={"to": 10, "hex_content": "41", "dlr_url": url, "dlr_level": 1,
                                          "dlr_method": "get"}).status_code == 200
    assert api.post("/secure/send", json={"to": 20, "hex-content": "41", "dlr-url": url, "dlr-level": 1,
                                          "dlr-method": "GET"}).status_code == 200
    assert sb.wait_idle(5)
    first, second = sb.accepted()
    for key in ("hex_content", "dlr_url", "dlr_level", "dlr_method"):
        assert first[key] == second[key]
    assert [c["method"] for c in receiver.hits("/dlr")] == ["GET", "GET"]


def test_to_list_on_send_uses_the_first_only(api, sb):
    assert api.post("/secure/send", json={"to": ["4411", "4422"], "content": "x"}).status_code == 200
    assert [m["to"] for m in sb.accepted()] == ["4411"]


def test_batch_skips_incomplete_messages_silently(api, sb):
    batch = {"messages": [{"content": "no to"}, {"to": "4410"}, {"to": [], "content": "empty list"},
                          {"to": "4420", "content": "ok"}, {"to": ["4430", "4440"], "hex_content": "41"}]}
    assert api.post("/secure/sendbatch", json=batch).json()["data"]["messageCount"] == 3
    assert api.post("/secure/sendbatch", json={}).json()["data"]["messageCount"] == 0
    assert sb.wait_idle(5)
    assert sorted(m["to"] for m in sb.accepted()) == ["4420", "4430", "4440"]


def test_globals_can_supply_to_and_content(api, sb):
    batch = {"globals": {"content": "from globals", "to": "4410"}, "messages": [{}, {"to": "4420"}]}
    assert api.post("/secure/sendbatch", json=batch).json()["data"]["messageCount"] == 2
    assert sb.wait_idle(5)
    assert sorted((m["to"], m["content"]) for m in sb.accepted()) == [("4410", "from globals"),
                                                                      ("4420", "from globals")]


def test_batch_message_errors_go_to_errback(api, sb, receiver):
    batch = {"batch_config": {"errback_url": receiver.url + "/eb"},
             "messages": [{"to": "4410", "content": "x", "hex_content": "41"}]}
    api.post("/secure/sendbatch", json=batch)
    assert sb.wait_idle(5)
    [call] = receiver.params("/eb")
    assert call["statusText"] == 'HTTPAPI error: Error "content and hex-content cannot be used both in same request.'


def test_rate(api):
    response = api.get("/secure/rate", params={"to": "4410", "content": "x" * 161})
    assert response.json() == {"data": {"unit_rate": 0.01, "submit_sm_count": 2}}
    assert api.get("/secure/rate", params={"to": "4417"}).status_code == 412


# --- Credit ----------------------------------------------------------------------------------

@pytest.mark.parametrize("params, parts", [
    ({"content": "a" * 160}, 1),
    ({"content": "a" * 161}, 2),
    ({"content": "a" * 306}, 2),
    ({"content": "a" * 307}, 3),
    ({"content": "€" * 80}, 1),  # extension characters take two septets
    ({"content": "€" * 81}, 2),
    ({"content": "[]" * 76}, 2),  # 304 septets
    ({"content": "[]" * 77}, 3),  # 308 septets
    ({"coding": 8, "hex_content": "0628" * 70}, 1),
    ({"coding": 8, "hex_content": "0628" * 71}, 2),
    ({"coding": 8, "hex_content": "0628" * 134}, 2),
    ({"coding": 8, "hex_content": "0628" * 135}, 3),
    ({"coding": 4, "hex_content": "00" * 140}, 1),
    ({"coding": 4, "hex_content": "00" * 141}, 2),
])
def test_credit_decreases_per_part(api, sb, params, parts):
    assert api.post("/secure/send", json={"to": "4410", **params}).status_code == 200
    assert sb.accepted()[0]["parts"] == parts
    assert sb.balance("foo") == Decimal("100") - Decimal("0.01") * parts
    assert api.get("/secure/balance").json()["data"]["balance"] == str(Decimal("100") - Decimal("0.01") * parts)


def test_no_credit_on_send_is_403(sb):
    poor = ("poor", "man")
    response = requests.post(sb.url + "/secure/send", json={"to": 1, "content": "a" * 200}, auth=poor, timeout=5)
    assert (response.status_code, response.json()) == (403, {"message": f'Error "{NO_CREDIT}'})
    assert sb.balance("poor") == Decimal("0.01") and sb.accepted() == []
    # One part still fits, and then nothing does.
    assert requests.post(sb.url + "/secure/send", json={"to": 1, "content": "a"}, auth=poor, timeout=5).ok
    assert requests.post(sb.url + "/secure/send", json={"to": 1, "content": "a"}, auth=poor, timeout=5).status_code == 403


def test_no_credit_on_sendbatch_goes_to_errback(sb, receiver):
    batch = {"batch_config": {"callback_url": receiver.url + "/cb", "errback_url": receiver.url + "/eb"},
             "messages": [{"to": ["4410", "4420", "4430"], "content": "x"}]}
    response = requests.post(sb.url + "/secure/sendbatch", json=batch, auth=("poor", "man"), timeout=5)
    assert response.status_code == 200 and response.json()["data"]["messageCount"] == 3
    assert sb.wait_idle(5)
    assert len(receiver.hits("/cb")) == 1  # the balance paid for one message
    errbacks = receiver.params("/eb")
    assert sorted(e["to"] for e in errbacks) == ["4420", "4430"]  # one worker sends a batch in order
    assert {e["statusText"] for e in errbacks} == {f'HTTPAPI error: Error "{NO_CREDIT}'}
    assert {e["status"] for e in errbacks} == {"0"}
    assert sb.balance("poor") == Decimal("0")


# --- Scheduling ------------------------------------------------------------------------------

def test_schedule_in_seconds_defers_sending(api, sb, receiver):
    batch = {"batch_config": {"schedule_at": "1s", "callback_url": receiver.url + "/cb"},
             "messages": [{"to": "4410", "content": "later"}]}
    started = time.monotonic()
    data = api.post("/secure/sendbatch", json=batch).json()["data"]
    assert data["scheduled"] == "1s"
    time.sleep(0.3)
    assert sb.accepted() == [] and receiver.calls == [] and sb.balance("foo") == Decimal("100")
    assert sb.wait_idle(5)
    assert time.monotonic() - started >= 0.95
    assert len(sb.accepted()) == 1 and len(receiver.hits("/cb")) == 1


def test_schedule_fractional_seconds_and_future_date(api, sb):
    data = api.post("/secure/sendbatch", json={"batch_config": {"schedule_at": "1.5s"},
                                               "messages": [{"to": "4410", "content": "x"}]}).json()["data"]
    assert data["scheduled"] == "1.5s"
    when = (datetime.now() + timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S")
    data = api.post("/secure/sendbatch", json={"batch_config": {"schedule_at": when},
                                               "messages": [{"to": "4420", "content": "x"}]}).json()["data"]
    assert re.fullmatch(r"[0-9.]+s", data["scheduled"]) and 0 < float(data["scheduled"][:-1]) <= 2
    assert sb.accepted() == []
    assert sb.wait_idle(5)
    assert sorted(m["to"] for m in sb.accepted()) == ["4410", "4420"]


@pytest.mark.parametrize("value", ["tomorrow", "10m", "2017-11-15T09:00:00"])
def test_schedule_unknown_format_is_412(api, value):
    response = api.post("/secure/sendbatch", json={"batch_config": {"schedule_at": value}, "messages": []})
    assert response.status_code == 412
    assert response.json()["title"] == "Cannot parse scheduled_at value"


# --- DLRs ------------------------------------------------------------------------------------

def send_with_dlr(api, receiver, to="4410", level=3, method=None, path="/dlr", content="Hello there, this is a DLR test"):
    params = {"to": to, "content": content, "dlr": "yes", "dlr-url": receiver.url + path, "dlr-level": level}
    if method:
        params["dlr-method"] = method
    response = api.post("/secure/send", json=params)
    assert response.status_code == 200, response.text
    return response.json()["data"].split('"')[1]


def test_level_3_gives_exactly_two_reports_by_post(api, sb, receiver):
    message_id = send_with_dlr(api, receiver)
    assert sb.wait_idle(5)
    calls = receiver.hits("/dlr")
    assert len(calls) == 2
    assert all(c["method"] == "POST" and c["content_type"] == "application/x-www-form-urlencoded" and not c["query"]
               for c in calls)
    level1, level2 = sorted((c["form"] for c in calls), key=lambda p: p["level"])
    assert level1 == {"id": message_id, "level": "1", "message_status": "ESME_ROK", "connector": "sandbox"}
    assert level2["level"] == "2" and level2["id"] == message_id and level2["message_status"] == "DELIVRD"
    assert {"id_smsc", "sub", "dlvrd", "subdate", "donedate", "err", "text"} <= set(level2)
    assert re.fullmatch(r"\d{10}", level2["subdate"]) and re.fullmatch(r"\d{10}", level2["donedate"])
    assert (level2["err"], level2["dlvrd"], level2["text"]) == ("000", "001", "Hello there, this is")
    assert [d["acked"] for d in sb.deliveries()] == [True, True]


def test_dlr_get_appends_to_an_existing_query_string(api, sb, receiver):
    send_with_dlr(api, receiver, level=1, method="GET", path="/dlr?token=s3cret")
    assert sb.wait_idle(5)
    [call] = receiver.hits("/dlr")
    assert call["method"] == "GET" and call["form"] == {}
    assert call["query"]["token"] == "s3cret" and call["query"]["message_status"] == "ESME_ROK"


def test_dlr_level_2_only(api, sb, receiver):
    send_with_dlr(api, receiver, level=2)
    assert sb.wait_idle(5)
    assert [p["level"] for p in receiver.params("/dlr")] == ["2"]


def test_dlr_url_without_dlr_flag_asks_for_reports_and_dlr_no_does_not(api, sb, receiver):
    api.post("/secure/send", json={"to": "4410", "content": "x", "dlr-url": receiver.url + "/a"})
    api.post("/secure/send", json={"to": "4420", "content": "x", "dlr": "no", "dlr-url": receiver.url + "/b"})
    assert sb.wait_idle(5)
    assert [p["level"] for p in receiver.params("/a")] == ["1"]  # dlr-level defaults to 1
    assert receiver.hits("/b") == []


def test_dlr_userinfo_is_sent_as_basic_auth(api, sb, receiver):
    url = receiver.url.replace("http://", "http://hook:pa%3Ass@")
    api.post("/secure/send", json={"to": "4410", "content": "x", "dlr-url": url + "/dlr"})
    assert sb.wait_idle(5)
    [call] = receiver.hits("/dlr")
    assert call["authorization"] == "Basic " + base64.b64encode(b"hook:pa:ss").decode()


def test_dlr_is_retried_until_acked(api, sb, receiver):
    receiver.on("/dlr", (500, b"ACK/Jasmin"), (200, b"OK"))
    send_with_dlr(api, receiver, level=1)
    assert sb.wait_idle(5)
    attempts = [(d["attempt"], d["status_code"], d["acked"]) for d in sb.deliveries()]
    assert attempts == [(1, 500, False), (2, 200, False), (3, 200, True)]
    assert len(receiver.hits("/dlr")) == 3


def test_dlr_retries_stop_after_dlr_retries(api, sb, receiver):
    receiver.on("/dlr", *[(200, b"NACK")] * 10)
    send_with_dlr(api, receiver, level=1)
    assert sb.wait_idle(5)
    assert [d["attempt"] for d in sb.deliveries()] == [1, 2, 3, 4]  # first try + 3 retries
    assert len(receiver.hits("/dlr")) == 4


def test_unreachable_dlr_url_is_retried_then_given_up(api, sb):
    api.post("/secure/send", json={"to": "4410", "content": "x", "dlr-url": "http://127.0.0.1:9/dlr"})
    assert sb.wait_idle(5)
    deliveries = sb.deliveries()
    assert len(deliveries) == 4 and all(d["error"] and d["status_code"] is None for d in deliveries)


def test_callbacks_are_never_retried(sb, receiver):
    receiver.on("/cb", (500, b"no"))
    batch = {"batch_config": {"callback_url": receiver.url + "/cb"}, "messages": [{"to": "4410", "content": "x"}]}
    requests.post(sb.url + "/secure/sendbatch", json=batch, auth=AUTH, timeout=5)
    assert sb.wait_idle(5)
    assert len(receiver.hits("/cb")) == 1
    [delivery] = sb.deliveries()
    assert (delivery["kind"], delivery["status_code"], delivery["acked"]) == ("callback", 500, False)


@pytest.mark.parametrize("to, level1, level2, err", [
    ("4410", "ESME_ROK", "DELIVRD", "000"),
    ("4419", "ESME_ROK", "UNDELIV", "001"),
    ("4418", "ESME_RSUBMITFAIL", None, None),
    ("4416", "ESME_ROK", "EXPIRED", "000"),
])
def test_outcomes_by_last_digit(api, sb, receiver, to, level1, level2, err):
    send_with_dlr(api, receiver, to=to, level=3)
    assert sb.wait_idle(5)
    reports = {p["level"]: p for p in receiver.params("/dlr")}
    assert reports["1"]["message_status"] == level1
    if level2 is None:
        assert set(reports) == {"1"}
    else:
        assert (reports["2"]["message_status"], reports["2"]["err"]) == (level2, err)
    assert sb.accepted()[0]["outcome"] == (level2 or level1)


# --- Faults ----------------------------------------------------------------------------------

def test_fault_header_500_and_429_do_not_accept(api, sb):
    response = api.post("/secure/send", json={"to": 1, "content": "x"}, headers={"X-Sandbox-Fault": "500"})
    assert response.status_code == 500 and "title" in response.json()
    response = api.post("/secure/send", json={"to": 1, "content": "x"}, headers={"X-Sandbox-Fault": "429"})
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert sb.accepted() == [] and sb.balance("foo") == Decimal("100")


def test_fault_drop_resets_the_connection_and_does_not_accept(api, sb):
    with pytest.raises(requests.ConnectionError):
        api.post("/secure/send", json={"to": 1, "content": "x"}, headers={"X-Sandbox-Fault": "drop"})
    assert sb.accepted() == []
    assert api.post("/secure/send", json={"to": 1, "content": "x"}).status_code == 200


def test_fault_malformed_answers_garbage_but_accepts(api, sb):
    response = api.post("/secure/send", json={"to": 1, "content": "x"}, headers={"X-Sandbox-Fault": "malformed"})
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert len(sb.accepted()) == 1 and sb.balance("foo") == Decimal("99.99")


def test_fault_latency(api):
    started = time.monotonic()
    assert api.get("/secure/balance", headers={"X-Sandbox-Fault": "latency=200"}).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_unknown_fault_header_is_rejected(api):
    assert api.get("/secure/balance", headers={"X-Sandbox-Fault": "explode"}).status_code == 400


def test_fault_rates_are_reproducible_with_a_seed(api, sb):
    def run():
        sb.set_faults(error_500_rate=0.3, error_429_rate=0.3, seed=42)
        return [api.get("/secure/balance").status_code for _ in range(40)]

    first, second = run(), run()
    assert first == second
    assert {200, 429, 500} == set(first)


def test_fault_rates_set_over_http_and_reset(api, sb):
    response = requests.post(sb.url + "/_sandbox/faults", json={"drop_rate": 1.0}, timeout=5)
    assert response.json()["drop_rate"] == 1.0
    with pytest.raises(requests.ConnectionError):
        api.post("/secure/send", json={"to": 1, "content": "x"})
    sb.set_faults(malformed_rate=1.0)
    assert api.get("/secure/balance").content == b'{"data": "Succ'
    requests.post(sb.url + "/_sandbox/reset", timeout=5)
    assert api.get("/secure/balance").json()["data"]["balance"] == "100.00"
    assert requests.post(sb.url + "/_sandbox/faults", json={"drop_rate": 2}, timeout=5).status_code == 400


def test_latency_and_faults_from_constructor():
    with Sandbox(faults={"error_500_rate": 1.0}) as sandbox:
        assert requests.get(sandbox.url + "/ping", timeout=5).status_code == 500
        assert requests.get(sandbox.url + "/_sandbox/stats", timeout=5).status_code == 200  # never faulted


# --- Introspection and state -----------------------------------------------------------------

def test_introspection_endpoints(api, sb, receiver):
    send_with_dlr(api, receiver, to="4410", level=1)
    api.post("/secure/send", json={"to": "4420", "content": "x"})
    assert sb.wait_idle(5)
    messages = requests.get(sb.url + "/_sandbox/messages", timeout=5).json()
    assert [m["to"] for m in messages] == ["4410", "4420"]
    assert [m["to"] for m in requests.get(sb.url + "/_sandbox/messages?to=4420", timeout=5).json()] == ["4420"]
    deliveries = requests.get(sb.url + "/_sandbox/deliveries", timeout=5).json()
    assert deliveries == sb.deliveries() and deliveries[0]["kind"] == "dlr"
    stats = requests.get(sb.url + "/_sandbox/stats", timeout=5).json()
    assert stats["accepted"] == 2 and stats["deliveries"]["dlr"] == {"attempts": 1, "acked": 1}
    assert stats["balances"]["foo"] == "99.98" and stats["pending"] == 0
    assert requests.post(sb.url + "/_sandbox/reset", timeout=5).status_code == 200
    assert sb.accepted() == [] and sb.deliveries() == [] and sb.balance("foo") == Decimal("100")


def test_reset_drops_scheduled_work(api, sb):
    api.post("/secure/sendbatch", json={"batch_config": {"schedule_at": "60s"}, "messages": [{"to": 1, "content": "x"}]})
    assert sb.wait_idle(0.1) is False
    sb.reset()
    assert sb.wait_idle(1)


def test_concurrent_sends_are_all_charged_and_kept(sb):
    def worker():
        with requests.Session() as session:
            for _ in range(25):
                assert session.post(sb.url + "/secure/send", json={"to": "4410", "content": "x"},
                                    auth=AUTH, timeout=10).status_code == 200

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sb.accepted()) == 200
    assert len({m["id"] for m in sb.accepted()}) == 200
    assert sb.balance("foo") == Decimal("98.00")


def test_keep_alive_serves_many_requests_on_one_connection(sb):
    conn = http.client.HTTPConnection("127.0.0.1", sb.port, timeout=5)
    headers = {"Authorization": "Basic Zm9vOmJhcg==", "Content-Type": "application/json"}
    for _ in range(20):
        conn.request("POST", "/secure/send", json.dumps({"to": 1, "content": "x"}), headers)
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Connection") is None
        response.read()
    conn.close()


def test_stop_closes_idle_keep_alive_connections():
    sandbox = Sandbox().start()
    conn = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    conn.request("GET", "/ping")
    conn.getresponse().read()
    sandbox.stop()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/ping")
        conn.getresponse()


# --- Command line ----------------------------------------------------------------------------

def test_parse_user():
    assert parse_user("a:b:c:12.5") == SandboxUser("a", "b:c", Decimal("12.5"))
    assert parse_user("a:b:ND") == SandboxUser("a", "b", None)
    with pytest.raises(Exception):
        parse_user("nobalance")


def test_parser_defaults_build_the_documented_sandbox():
    options = vars(build_parser().parse_args(["--port", "0", "--drop-rate", "0.1", "--seed", "3"]))
    sandbox = sandbox_from_options(options)
    assert (sandbox.host, sandbox.port) == ("127.0.0.1", 0)
    assert sandbox.accounts.authenticate("sandbox", "sandbox") and sandbox.balance("sandbox") == Decimal("1000")
    assert (sandbox.faults.drop_rate, sandbox.faults.seed) == (0.1, 3)
    assert build_parser().parse_args([]).port == 8099


def test_python_m_runs_without_django():
    code = ("import sys, d7sms.sandbox, d7sms.sandbox.cli; "
            "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'django imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=30)
    process = subprocess.Popen([sys.executable, "-m", "d7sms.sandbox", "--port", "0", "--user", "u:p:5"],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = re.search(r"http://\S+", line).group(0)
        assert "u:p balance 5" in process.stdout.readline()
        response = requests.get(url + "/secure/balance", auth=("u", "p"), timeout=5)
        assert response.json()["data"]["balance"] == "5.00"
    finally:
        process.send_signal(2)  # Ctrl-C
        assert process.wait(timeout=10) == 0


def test_management_command_help_lists_outcomes(capsys):
    from django.core.management import call_command

    with pytest.raises(SystemExit):
        call_command("d7sms_sandbox", "--help")
    out = capsys.readouterr().out
    assert "--dlr-retry-delay" in out and "--fail-rate" in out
    assert "...7   no route" in out and "ESME_RSUBMITFAIL" in out


def test_management_command_serves_with_its_options(monkeypatch):
    from django.core.management import call_command

    from d7sms.sandbox import cli

    seen = {}
    monkeypatch.setattr(cli, "serve", lambda sandbox, out: seen.update(sandbox=sandbox))
    call_command("d7sms_sandbox", "--port", "0", "--user", "x:y:7", "--latency-ms", "5")
    sandbox = seen["sandbox"]
    assert sandbox.balance("x") == Decimal("7") and sandbox.faults.latency_ms == 5


def test_sms_count_quota_is_reported_and_charged_per_part():
    with Sandbox(users=[SandboxUser("q", "q", None, sms_count=3)]) as sandbox:
        def send(content):
            return requests.post(sandbox.url + "/secure/send", json={"to": 1, "content": content},
                                 auth=("q", "q"), timeout=5)

        balance = requests.get(sandbox.url + "/secure/balance", auth=("q", "q"), timeout=5).json()
        assert balance == {"data": {"balance": "ND", "sms_count": 3}}
        assert send("a" * 161).status_code == 200  # two parts
        assert send("a" * 161).status_code == 403  # one part left
        assert send("a").status_code == 200
        assert sandbox.sms_count("q") == 0
        sandbox.reset()
        assert sandbox.sms_count("q") == 3
