"""`tessera stdio` as a real process: the seed cases, multi-line messages, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tessera.stdio import Framer

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
    out = list(framer.feed('{"a": "}{\\"",\n'))
    assert out == []
    out = list(framer.feed(' "b": [1, {"c": 2}]} {"d": 1}\n'))
    assert [ok for ok, _ in out] == [True, True]
    assert json.loads(out[0][1]) == {"a": '}{"', "b": [1, {"c": 2}]}
