#!/usr/bin/env python3
"""Signed webhooks, checked from outside with the official `standardwebhooks` package.

Runs a small receiver (http.server on a free loopback port) that verifies every message it gets
with `standardwebhooks.Webhook(secret).verify(body, headers)` against each secret the check
knows, records it and answers 2xx (or 500 when the check asks for a failure). Against a live
server started with `--webhook-allowed-hosts 127.0.0.1 --webhook-retry-schedule 1s,1s,2s` it
registers a webhook for `round.*` as an admin (`Authorization: Bearer $LHS_API_TOKEN`), creates,
patches, cancels and deletes a round (and changes a speaker, which the webhook must not get),
and checks that the messages arrive in order, each verified, with the right `type` and
`data.id`; that a tampered message fails verification; that the deliveries are listed as
delivered; that after `rotate-secret` messages verify with the new secret only; that a failed
attempt is retried on the schedule and `.../retry` sends a message again under the same id; and
that a disabled or deleted webhook gets nothing. Each message's `webhook-id` is
`msg_<UUIDv7>_<webhook id>`, the `message_id` of its delivery, whose attempts
`GET /webhooks/{id}/deliveries/{delivery_id}` lists.

    python scripts/contract/webhook_check.py --base-url http://127.0.0.1:8080

With --sink it only runs a receiver that answers 204 to every POST, printing its port, until it
is stopped: scripts/contract-test points a webhook at it so that schemathesis finds a webhook
with deliveries.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from checks import CheckFailure, expect, fail, ok

API = "/api/v1"
ROUND_EVENTS = ["round.created", "round.updated", "round.cancelled", "round.deleted"]


# ---- the receiver -----------------------------------------------------------------------------


class Received:
    def __init__(self, path: str, headers: dict[str, str], body: bytes, answered: int,
                 verified_with: list[str], errors: dict[str, str]) -> None:
        self.path = path
        self.headers = headers
        self.body = body
        self.answered = answered
        self.verified_with = verified_with
        self.errors = errors
        self.json: Any = json.loads(body) if verified_with else None

    @property
    def id(self) -> str:
        return self.headers.get("webhook-id", "")

    def __repr__(self) -> str:
        return (f"<{self.id} answered {self.answered} verified with {self.verified_with} "
                f"{self.body[:160]!r}>")


class Receiver:
    """Verifies each message with every secret it knows, as a receiver would with its one."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.messages: list[Received] = []
        self.fail_next = 0
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.changed:
                    verified, errors = [], {}
                    for label, secret in receiver.secrets.items():
                        try:
                            Webhook(secret).verify(body, headers)
                            verified.append(label)
                        except WebhookVerificationError as error:
                            errors[label] = str(error)
                    answer = 204
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        answer = 500
                    receiver.messages.append(
                        Received(self.path, headers, body, answer, verified, errors))
                    receiver.changed.notify_all()
                self.send_response(answer)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Waits until `count` messages have come in (answered 2xx or not)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    fail(f"{count} messages within {timeout:.0f} s", count, self.messages)
                self.changed.wait(left)
            return list(self.messages)

    def quiet(self, count: int, seconds: float) -> None:
        """Checks that nothing more than `count` messages came in for `seconds`."""
        time.sleep(seconds)
        with self.changed:
            if len(self.messages) != count:
                fail(f"no further message within {seconds} s", count, self.messages[count:])

    def close(self) -> None:
        self.server.shutdown()


# ---- the server -------------------------------------------------------------------------------


class Api:
    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})

    def call(self, method: str, path: str, status: int, body: Any = None) -> Any:
        response = self.http.request(method, API + path, json=body)
        if response.status_code != status:
            fail(f"{method} {path} {json.dumps(body) if body is not None else ''}", status,
                 f"{response.status_code} {response.text[:600]}")
        return response.json() if response.content else None


def round_body(day: str, title: str) -> dict[str, Any]:
    return {"title": title, "starts_at": f"{day}T12:00:00-05:00", "ends_at": f"{day}T13:00:00-05:00",
            "location": "BMC – MassMutual 5"}


def check_secret(what: str, secret: Any) -> None:
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        fail(f"{what}: a whsec_ secret", "whsec_...", secret)
    if len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) < 24:
        fail(f"{what}: the secret holds at least 24 random bytes", ">= 24", secret)


def check_message(what: str, message: Received, type_: str, round_id: int, secret: str,
                  other_secrets: list[str]) -> None:
    if message.answered // 100 != 2 and message.answered != 500:
        fail(f"{what}: the receiver's answer", "2xx", message.answered)
    expect(f"{what}: verified (standardwebhooks) with the webhook's secret", [secret],
           message.verified_with)
    for other in other_secrets:
        if other not in message.errors:
            fail(f"{what}: does not verify with the {other} secret", "a verification error",
                 message.verified_with)
    expect(f"{what}: Content-Type", "application/json",
           message.headers.get("content-type", "").split(";")[0])
    body = message.json
    expect(f"{what}: the message's members", ["data", "timestamp", "type"], sorted(body))
    expect(f"{what}: type", type_, body["type"])
    expect(f"{what}: data.id", round_id, body["data"].get("id"))
    try:
        dt.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        fail(f"{what}: timestamp is RFC 3339", "a date-time", body["timestamp"])
    stamp = int(message.headers["webhook-timestamp"])
    if abs(stamp - time.time()) > 60:
        fail(f"{what}: webhook-timestamp is now (seconds since 1970)", int(time.time()), stamp)


def run(api: Api, receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.port}/hooks/lhs-rounds"

    # -- where a webhook may point, and what it may list -------------------------------------------
    for body, field in (
        ({"url": f"http://[::1]:{receiver.port}/", "events": ["round.*"]}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data", "events": ["round.*"]}, "url"),
        ({"url": f"ftp://127.0.0.1:{receiver.port}/", "events": ["round.*"]}, "url"),
        ({"url": f"http://user:pw@127.0.0.1:{receiver.port}/", "events": ["round.*"]}, "url"),
        ({"url": url, "events": ["round.exploded"]}, "events[0]"),
    ):
        problem = api.call("POST", "/webhooks", 422, body)
        fields = [e.get("field") for e in problem.get("errors", [])]
        if field not in fields:
            fail(f"POST /webhooks {body}: the problem names {field}", field, problem)
    ok("webhooks refused: loopback not allowed ([::1]), link-local, ftp, credentials, unknown event")

    # -- a webhook for round.* ----------------------------------------------------------------------
    created = api.call("POST", "/webhooks", 201, {
        "url": url, "events": ["round.*"], "description": "contract check: standardwebhooks"})
    hook = created["id"]
    first = created["secret"]
    check_secret("POST /webhooks", first)
    expect("POST /webhooks: events", ["round.*"], created["events"])
    expect("POST /webhooks: enabled by default", True, created["enabled"])
    shown = api.call("GET", f"/webhooks/{hook}", 200)
    if "secret" in shown:
        fail(f"GET /webhooks/{hook} never shows the secret again", "no secret", shown)
    listed = api.call("GET", "/webhooks", 200)
    if any("secret" in w for w in listed["items"]) or hook not in [w["id"] for w in listed["items"]]:
        fail("GET /webhooks lists the webhook without its secret", hook, listed)
    receiver.secrets["first"] = first
    ok(f"webhook {hook} made for round.*, its secret shown only in the answer to POST")

    # -- a round's life -----------------------------------------------------------------------------
    round_ = api.call("POST", "/rounds", 201, round_body("2032-01-15", "Webhook check"))
    rid = round_["id"]
    api.call("PATCH", f"/rounds/{rid}", 200, {"title": "Webhook check, renamed"})
    # Events the webhook does not subscribe to: nothing may come of them.
    speaker = api.call("POST", "/speakers", 201, {"full_name": "Wanda Webhook"})
    api.call("PATCH", f"/speakers/{speaker['id']}", 200, {"title": "Not a round event"})
    api.call("PATCH", f"/rounds/{rid}", 200, {"status": "cancelled"})
    api.call("DELETE", f"/rounds/{rid}", 204)
    api.call("DELETE", f"/speakers/{speaker['id']}", 204)
    messages = receiver.wait_for(4)
    receiver.quiet(4, 2.0)
    expect("the messages' types, in order", ROUND_EVENTS, [m.json and m.json["type"] for m in messages])
    for event, message in zip(ROUND_EVENTS, messages):
        check_message(f"{event} message {message.id}", message, event, rid, "first", [])
        expect(f"{event}: answered 2xx", 204, message.answered)
        expect(f"{event}: POSTed to the webhook's path", "/hooks/lhs-rounds", message.path)
    expect("webhook-id is unique to each message", 4, len({m.id for m in messages}))
    expect("round.updated carries the new title", "Webhook check, renamed",
           messages[1].json["data"]["title"])
    expect("round.cancelled carries the status", "cancelled", messages[2].json["data"]["status"])
    ok(f"round {rid} created, updated, cancelled, deleted: 4 messages in order, all verified; "
       "none for the speaker")

    # -- a tampered message does not verify ---------------------------------------------------------
    original = messages[0]
    Webhook(first).verify(original.body, original.headers)  # the genuine one does
    tampered_body = original.body.replace(f'"id":{rid}'.encode(), f'"id":{rid + 1}'.encode())
    if tampered_body == original.body:
        tampered_body = original.body + b" "
    for what, body, headers in (
        ("a changed body", tampered_body, original.headers),
        ("a changed webhook-id", original.body, {**original.headers, "webhook-id": original.id + "x"}),
        ("a changed webhook-timestamp", original.body,
         {**original.headers, "webhook-timestamp": str(int(original.headers["webhook-timestamp"]) + 1)}),
    ):
        try:
            Webhook(first).verify(body, headers)
        except WebhookVerificationError:
            continue
        fail(f"a message with {what} fails verification", "WebhookVerificationError", "verified")
    ok("a changed body, id or timestamp fails verification")

    # -- the deliveries -----------------------------------------------------------------------------
    deliveries = api.call("GET", f"/webhooks/{hook}/deliveries", 200)
    expect("GET .../deliveries: total", 4, deliveries["total"])
    items = deliveries["items"]
    expect("GET .../deliveries: event types, newest first", ROUND_EVENTS[::-1],
           [d["event_type"] for d in items])
    for d in items:
        expect(f"delivery {d['id']}: status", "delivered", d["status"])
        expect(f"delivery {d['id']}: attempts", 1, d["attempts"])
        expect(f"delivery {d['id']}: last_status_code", 204, d.get("last_status_code"))
        if not d.get("delivered_at"):
            fail(f"delivery {d['id']}: delivered_at", "a date-time", d)
    expect("the deliveries' message_ids are the messages' webhook-ids",
           sorted(d["message_id"] for d in items), sorted(m.id for m in messages))
    for m in messages:
        prefix, _, rest = m.id.partition("_")
        uuid, _, webhook = rest.partition("_")
        if prefix != "msg" or len(uuid) != 32 or uuid[12] != "7" or webhook != str(hook):
            fail("webhook-id is msg_<UUIDv7>_<webhook id>", f"msg_<32 hex>_{hook}", m.id)
    ok("GET .../deliveries lists the 4 messages as delivered at the first attempt, under their "
       "webhook-ids (msg_<UUIDv7>_<webhook id>)")

    # -- rotate-secret ------------------------------------------------------------------------------
    rotated = api.call("POST", f"/webhooks/{hook}/rotate-secret", 200)
    second = rotated["secret"]
    check_secret("POST .../rotate-secret", second)
    if second == first:
        fail("rotate-secret gives a new secret", "a different secret", second)
    receiver.secrets["second"] = second
    round2 = api.call("POST", "/rounds", 201, round_body("2032-02-12", "Webhook check, rotated"))
    api.call("DELETE", f"/rounds/{round2['id']}", 204)
    messages = receiver.wait_for(6)
    for event, message in zip(["round.created", "round.deleted"], messages[4:]):
        check_message(f"{event} after rotation", message, event, round2["id"], "second", ["first"])
    ok("after rotate-secret, messages verify with the new secret only")

    # -- a failed attempt is retried; retry sends it again ------------------------------------------
    with receiver.changed:
        receiver.fail_next = 1
    round3 = api.call("POST", "/rounds", 201, round_body("2032-03-11", "Webhook check, retried"))
    messages = receiver.wait_for(8)
    failed, retried = messages[6], messages[7]
    expect("the first attempt was answered 500", 500, failed.answered)
    expect("the retry has the same webhook-id", failed.id, retried.id)
    check_message("round.created, retried", retried, "round.created", round3["id"], "second",
                  ["first"])
    expect("the retry's body is the same message", failed.body, retried.body)
    # the worker records the attempt right after the answer
    deadline = time.monotonic() + 10
    while True:
        item = next(d for d in api.call("GET", f"/webhooks/{hook}/deliveries", 200)["items"]
                    if d["message_id"] == retried.id)
        if item["status"] == "delivered" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    delivery_id = item["id"]
    expect("the retried delivery: status", "delivered", item["status"])
    expect("the retried delivery: attempts", 2, item["attempts"])
    detail = api.call("GET", f"/webhooks/{hook}/deliveries/{delivery_id}", 200)
    expect("GET .../deliveries/{id}: the message_id", retried.id, detail["message_id"])
    log = detail["attempt_log"]
    expect("GET .../deliveries/{id}: every attempt's status code, oldest first", [500, 204],
           [a["status_code"] for a in log])
    expect("GET .../deliveries/{id}: the failed attempt's error", "answered 500", log[0]["error"])
    for attempt in log:
        if not isinstance(attempt["duration_ms"], int) or not attempt.get("attempted_at"):
            fail("each attempt has its time and duration", "attempted_at, duration_ms", attempt)
    again = api.call("POST", f"/webhooks/{hook}/deliveries/{delivery_id}/retry", 200)
    expect("POST .../retry: the delivery's id", delivery_id, again["id"])
    messages = receiver.wait_for(9)
    expect("POST .../retry sends the message again under its webhook-id", retried.id,
           messages[8].id)
    check_message("round.created, sent again", messages[8], "round.created", round3["id"],
                  "second", ["first"])
    api.call("POST", f"/webhooks/{hook}/deliveries/2147483647/retry", 404)
    ok("a 500 is retried on the schedule under the same webhook-id; .../retry sends it again")

    # -- disabled, then deleted: nothing more -------------------------------------------------------
    patched = api.call("PATCH", f"/webhooks/{hook}", 200, {"enabled": False})
    expect("PATCH enabled=false", False, patched["enabled"])
    api.call("DELETE", f"/rounds/{round3['id']}", 204)
    receiver.quiet(9, 2.0)
    api.call("DELETE", f"/webhooks/{hook}", 204)
    api.call("GET", f"/webhooks/{hook}", 404)
    round4 = api.call("POST", "/rounds", 201, round_body("2032-04-15", "Webhook check, deleted"))
    api.call("DELETE", f"/rounds/{round4['id']}", 204)
    receiver.quiet(9, 2.0)
    ok("a disabled webhook, and a deleted one, get no message")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="the server's root, such as http://127.0.0.1:8080")
    parser.add_argument("--sink", action="store_true",
                        help="only receive (204 to every POST), printing the port, until stopped")
    args = parser.parse_args(argv)
    if args.sink:
        sink = Receiver()
        print(sink.port, flush=True)
        threading.Event().wait()
        return 0
    if not args.base_url:
        parser.error("--base-url is needed unless --sink")
    token = os.environ.get("LHS_API_TOKEN")
    if not token:
        parser.error("LHS_API_TOKEN must hold an admin token")
    receiver = Receiver()
    try:
        run(Api(args.base_url, token), receiver)
    except CheckFailure as failure:
        print(f"FAIL webhook_check: {failure}", file=sys.stderr)
        return 1
    finally:
        receiver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
