"""`tessera stdio` as a real process: the seed cases, multi-line messages, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tessera.framing import Frame, Framer

ROOT = Path(__file__).resolve().parent.parent


def run_stdio(text: str) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "tessera", "stdio"], input=text, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


INIT = {"src": "c1", "dest": "gateway", "body": {
    "type": "init", "msg_id": 1,
    "aggregations": {"/api/orders/*/details": {"backends": ["orders", "users", "products"]}}}}
REQUEST = {"src": "c1", "dest": "gateway", "body": {
    "type": "api_request", "msg_id": 2, "method": "GET", "path": "/api/orders/123/details",
    "failure_strategy": "partial", "failed_services": ["users"]}}


def test_seed_cases() -> None:
    init_ok, response = run_stdio(json.dumps(INIT) + "\n" + json.dumps(REQUEST, indent=2) + "\n")
    assert init_ok == {"src": "gateway", "dest": "c1",
                       "body": {"type": "init_ok", "in_reply_to": 1}}
    body = response["body"]
    assert response["dest"] == "c1" and response["src"] == "gateway"
    assert body["type"] == "api_response" and body["in_reply_to"] == 2
    assert body["status"] == 200
    assert body["body"]["order"]["id"] == "123"
    assert body["body"]["user"] is None
    assert body["body"]["products"][0] == {"id": "1", "name": "Widget", "price": 9.99,
                                           "description": "The original widget."}


def test_failed_services_apply_to_one_request_only() -> None:
    again = json.loads(json.dumps(REQUEST))
    again["body"] = {"type": "api_request", "msg_id": 3, "method": "GET",
                     "path": "/api/orders/123/details"}
    replies = run_stdio("\n".join(json.dumps(m) for m in (INIT, REQUEST, again)) + "\n")
    assert replies[1]["body"]["body"]["user"] is None
    assert replies[2]["body"]["body"]["user"]["name"] == "Alice"


def test_bad_input_gets_errors_and_reading_goes_on() -> None:
    unknown = {"src": "c2", "dest": "gateway", "body": {"type": "ping", "msg_id": 5}}
    fail_fast = {"src": "c1", "dest": "gateway", "body": {
        "type": "api_request", "msg_id": 6, "path": "/api/orders/123/details",
        "failure_strategy": "fail_fast", "failed_services": ["users"]}}
    text = ("not json at all\n" + '{"src": "c1", "body": {"type": "init", "msg_id": 4, '
            '"aggregations": {"/api/x/*": {"backends": ["nope"]}}}}\n'
            + json.dumps(unknown) + "\n{\"broken\": tru}\n" + json.dumps(fail_fast) + "\n")
    bad_json, bad_config, bad_type, broken, fast = run_stdio(text)
    assert bad_json["body"]["type"] == "error" and bad_json["body"]["code"] == "bad_json"
    assert bad_config["body"]["code"] == "bad_config" and bad_config["body"]["in_reply_to"] == 4
    assert bad_type["body"] == {"type": "error", "in_reply_to": 5, "code": "unknown_type",
                                "text": "unknown message type 'ping'; expected init or "
                                        "api_request"}
    assert bad_type["dest"] == "c2"
    assert broken["body"]["code"] == "bad_json"
    assert fast["body"]["status"] == 502
    assert fast["body"]["body"]["service"] == "users"


def test_framer_handles_braces_inside_strings() -> None:
    framer = Framer()
    assert list(framer.feed(b'{"a": "}{\\"",\n')) == []
    out = list(framer.feed(b' "b": [1, {"c": 2}]} {"d": 1}\n'))
    assert out == [Frame({"a": '}{"', "b": [1, {"c": 2}]}), Frame({"d": 1})]


def test_framer_decides_with_the_decoder_incomplete_waits_invalid_is_refused() -> None:
    framer = Framer()
    assert list(framer.feed(b"[1,2\n")) == []  # could go on: wait
    bad, good = framer.feed(b'{"ok": 1}\n')  # could not: one error, then the message
    assert bad.error is not None and "delimiter" in bad.error
    assert good == Frame({"ok": 1})
    assert list(framer.feed(b'{"a":\n')) == []
    assert list(framer.finish()) == [Frame(error="the input ended in the middle of a "
                                              "message")]


def test_a_pretty_printed_message_costs_linear_work() -> None:
    framer = Framer()
    body = {"items": [{"n": n, "inner": {"x": n}} for n in range(5000)]}
    lines = json.dumps(body, indent=2).encode().splitlines(keepends=True)
    out = [frame for line in lines for frame in framer.feed(line + b"" if line.endswith(
        b"\n") else line + b"\n")]
    assert out == [Frame(body)]


ORDER_42 = {"src": "c9", "dest": "gateway", "body": {
    "type": "api_request", "msg_id": 9, "path": "/api/orders/42/details"}}
BAD_MESSAGES = {
    "not json": b"{this is not json\n",
    "unclosed list": b"[1,2\n",
    "unterminated string": b'{"a": "unterminated\n',
    "a message over 1 MiB with a brace in a string":
        b'{"s": "' + b"{" * (1100 * 1024) + b'"}\n',
    "100,000 nested [": b"[" * 100_000 + b"\n",
    "NaN msg_id": b'{"src": "c", "body": {"type": "init", "msg_id": NaN}}\n',
    "invalid UTF-8": b'{"src": "c\xff\xfe", "body": {}}\n',
    "a pretty-printed message with an error inside":
        b'{\n  "src": "c",\n  "body": {\n    "type": tru\n  }\n}\n',
}


@pytest.mark.parametrize("bad", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_one_bad_message_gets_one_error_and_the_next_is_answered(bad: bytes) -> None:
    replies = run_stdio_bytes(bad + json.dumps(ORDER_42).encode() + b"\n")
    error, answer = replies
    assert error["body"]["type"] == "error" and error["body"]["code"] == "bad_json"
    assert answer["body"]["in_reply_to"] == 9 and answer["body"]["status"] == 200
    assert answer["body"]["body"]["user"]["name"] == "Aziz"


def test_eof_in_the_middle_of_a_message_is_answered_and_exits_0() -> None:
    replies = run_stdio_bytes(json.dumps(ORDER_42).encode() + b'\n{"src": "c", "body": {')
    assert replies[0]["body"]["status"] == 200
    assert replies[1]["body"]["code"] == "bad_json"
    assert "ended in the middle" in replies[1]["body"]["text"]


def test_a_template_that_cannot_be_filled_is_refused_at_init() -> None:
    init = {"src": "c", "dest": "gateway", "body": {"type": "init", "msg_id": 1, "aggregations": {
        "/api/x/*": {"backend_requests": [{"service": "orders",
                                           "path_template": "/orders/{id:{x}}"}]}}}}
    request = {"src": "c", "dest": "gateway", "body": {"type": "api_request", "msg_id": 2,
                                                        "path": "/api/x/1"}}
    refused, answer = run_stdio_bytes(b"".join(json.dumps(m).encode() + b"\n"
                                               for m in (init, request)))
    assert refused["body"]["code"] == "bad_config"
    assert "path_template" in refused["body"]["text"]
    assert answer["body"]["status"] == 404  # the shipped routes stayed; /api/x/* is not one


def run_stdio_bytes(data: bytes) -> list[dict[str, Any]]:
    """The process under a strict C locale, fed bytes: it must answer and exit 0."""
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    env.pop("PYTHONIOENCODING", None)
    done = subprocess.run([sys.executable, "-m", "tessera", "stdio"], input=data, cwd=ROOT,
                          capture_output=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"Traceback" not in done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_a_header_http_cannot_carry_is_a_bad_request_and_the_next_is_answered() -> None:
    """HTTP's own parser refuses a line break in a header; here the reader does."""
    def request(msg_id: int, headers: dict[str, str]) -> str:
        return json.dumps({"src": "c1", "dest": "gateway", "body": {
            "type": "api_request", "msg_id": msg_id, "path": "/api/orders/123/details",
            "headers": headers}})

    text = "\n".join([json.dumps(INIT), request(2, {"Authorization": "Bearer a\r\nX-Evil: 1"}),
                      request(3, {"Accept-Language": "\u20ac"}),
                      request(4, {"Authorization": "Bearer fine"})]) + "\n"
    _, line_break, euro, fine = run_stdio(text)
    for refused, msg_id in ((line_break, 2), (euro, 3)):
        assert refused["body"]["type"] == "error" and refused["body"]["in_reply_to"] == msg_id
        assert refused["body"]["code"] == "bad_request"
    assert "authorization" in line_break["body"]["text"]
    assert fine["body"]["status"] == 200

