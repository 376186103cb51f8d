#!/usr/bin/env python3
"""The action items' to-do feed (RFC 5545 VTODO), read by parsers no one here wrote.

Drives a live server started with `serve --demo` (and `--public-url https://rounds.example.org`):
fetches `GET /api/v1/action-items.ics`, whole and filtered, before and after changes it makes as
an admin (`Authorization: Bearer $LHS_API_TOKEN`), checks the text of every answer as
ics_check.py does (media type, CRLF, lines folded at 75 octets within UTF-8 characters), and
writes each calendar with what it must contain to OUT/manifest.json. The calendars are read with
Python `icalendar` here and with `ical.js` by scripts/contract/ts/todo-check.mjs, against the
same manifest:

    python scripts/contract/todo_check.py --base-url http://127.0.0.1:8080 --out DIR
    node scripts/contract/ts/todo-check.mjs DIR/manifest.json

What the manifest asks is stated from the JSON API's answers and from the strings the check
wrote, never from the feed: each to-do's UID (`action-item-<id>@<domain>`, the same before and
after a change), SUMMARY exactly as written, DUE as a date, STATUS as the item's, COMPLETED for
done items, SEQUENCE growing with every change, and no owner's e-mail address anywhere.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import icalendar

from checks import CheckFailure, expect, fail, ok
from ics_check import API, DOMAIN, PUBLIC_URL, Api, check_escaped, content_lines

STATUS = {"open": "NEEDS-ACTION", "in_progress": "IN-PROCESS", "done": "COMPLETED",
          "cancelled": "CANCELLED"}

# Strings that must come back exactly (TEXT escaping and folding, RFC 5545 §3.3.11 and §3.1).
TRICKY = ("Ask each unit; with commas, semicolons and a back\\slash — ünïcödé 🩺 and a long "
          "tail that is folded over more than one line of seventy-five octets")


def todo_of(item: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The to-do an action item must be, from its JSON (what the API answered)."""
    todo: dict[str, Any] = {
        "uid": f"action-item-{item['id']}@{DOMAIN}",
        "summary": item["text"],
        "due": item["due_date"],
        "status": STATUS[item["status"]],
        "url": f"{PUBLIC_URL}{API}/outcomes/{item['id']}",
        "completed": item["status"] == "done",
        "owner": item["owner"]["name"],
    }
    todo.update(extra)
    return todo


class Manifest:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.cases: list[dict[str, Any]] = []
        self.sequences: list[dict[str, Any]] = []

    def add(self, name: str, text: str, todos: list[dict[str, Any]]) -> str:
        file = f"{len(self.cases):02d}-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.ics"
        (self.out / file).write_text(text, encoding="utf-8", newline="")
        if "@example.org" in text:
            fail(f"{name}: no owner's e-mail address in the feed", "no @example.org", text)
        self.cases.append({"name": name, "file": file, "todos": todos})
        return name

    def sequence(self, uid: str, before: str, after: str, why: str) -> None:
        self.sequences.append({"uid": uid, "before": before, "after": after, "why": why})

    def write(self) -> Path:
        path = self.out / "manifest.json"
        path.write_text(json.dumps({"cases": self.cases, "sequences": self.sequences}, indent=1,
                                   ensure_ascii=False), encoding="utf-8")
        return path


def collect(api: Api, out: Path) -> Path:
    m = Manifest(out)
    items = api.json("GET", "/action-items?limit=100", 200)["items"]
    if len(items) < 4:
        fail("the demo's SWOT rounds have action items", ">= 4", len(items))
    whole = m.add("the demo's action items", api.calendar("/action-items.ics"),
                  [todo_of(i) for i in items])
    anonymous = api.anonymous.get(API + "/action-items.ics")
    expect("GET /action-items.ics without a token (calendars subscribe without one)", 200,
           anonymous.status_code)
    ok(f"the demo's {len(items)} action items, read with and without a token")

    # One owner's feed, their address in another case.
    tara = [i for i in items if i["owner"]["email"] == "tara.lagu@example.org"]
    m.add("one owner", api.calendar("/action-items.ics", {"owner_email": "Tara.Lagu@example.org"}),
          [todo_of(i) for i in tara])
    m.add("by status", api.calendar("/action-items.ics", {"status": "in_progress"}),
          [todo_of(i) for i in items if i["status"] == "in_progress"])

    # A new item with text that must be escaped and folded, then its life.
    rounds = api.json("GET", "/rounds?q=swot&limit=10", 200)["items"]
    round_id = rounds[0]["id"]
    made = api.json("POST", f"/rounds/{round_id}/outcomes", 201, {
        "kind": "action_item", "text": TRICKY, "due_date": "2031-02-28",
        "owner": {"name": "Zoë Ångström-Nuñez", "email": "zoe@example.org"}})
    uid = f"action-item-{made['id']}@{DOMAIN}"
    text = api.calendar("/action-items.ics", {"owner_email": "zoe@example.org"})
    check_escaped("GET /action-items.ics", text, "SUMMARY", TRICKY)
    previous = m.add("a new item", text, [todo_of(made)])
    for status in ("in_progress", "done", "cancelled"):
        made = api.json("PATCH", f"/outcomes/{made['id']}", 200, {"status": status})
        name = m.add(f"after its status became {status}",
                     api.calendar("/action-items.ics", {"owner_email": "zoe@example.org"}),
                     [todo_of(made)])
        m.sequence(uid, previous, name, f"status {status}")
        previous = name
    api.json("DELETE", f"/outcomes/{made['id']}", 204)
    gone = api.calendar("/action-items.ics", {"owner_email": "zoe@example.org"})
    if "BEGIN:VTODO" in gone:
        fail("after the item is deleted, its owner's feed is empty", "no VTODO", gone)
    m.add("after it is deleted", gone, [])
    ok("a new item with escapes, through open, in progress, done and cancelled, then deleted")
    del whole
    return m.write()


def verify(manifest_path: Path) -> None:
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    sequences: dict[tuple[str, str], int] = {}
    for case in manifest["cases"]:
        where = f"icalendar, {case['name']} ({case['file']})"
        raw = (manifest_path.parent / case["file"]).read_bytes()
        try:
            cal = icalendar.Calendar.from_ical(raw)
        except Exception as error:  # noqa: BLE001 - any parse error fails the check
            fail(f"{where}: parses", "a calendar", repr(error))
        if cal.errors:
            fail(f"{where}: no parse errors", [], cal.errors)
        expect(f"{where}: VERSION", "2.0", str(cal.get("VERSION")))
        expect(f"{where}: METHOD", "PUBLISH", str(cal.get("METHOD")))
        if cal.walk("VEVENT"):
            fail(f"{where}: to-dos only", "no VEVENT", len(cal.walk("VEVENT")))
        todos = cal.walk("VTODO")
        for todo in todos:
            if todo.errors:
                fail(f"{where}: no parse errors in the VTODO", [], todo.errors)
        uids = sorted(str(t.get("UID")) for t in todos)
        expect(f"{where}: the to-dos' UIDs", sorted(w["uid"] for w in case["todos"]), uids)
        by_uid = {str(t.get("UID")): t for t in todos}
        for want in case["todos"]:
            todo = by_uid[want["uid"]]
            what = f"{where}, {want['uid']}"
            expect(f"{what}: SUMMARY", want["summary"], str(todo.get("SUMMARY")))
            expect(f"{what}: STATUS", want["status"], str(todo.get("STATUS")))
            expect(f"{what}: URL", want["url"], str(todo.get("URL")))
            due = todo.decoded("DUE") if "DUE" in todo else None
            if not isinstance(due, dt.date) or isinstance(due, dt.datetime):
                fail(f"{what}: DUE is a date", "a date", due)
            expect(f"{what}: DUE", want["due"], due.isoformat())
            description = str(todo.get("DESCRIPTION", ""))
            if f"Owner: {want['owner']}" not in description:
                fail(f"{what}: DESCRIPTION names the owner", want["owner"], description)
            completed = todo.decoded("COMPLETED") if "COMPLETED" in todo else None
            if want["completed"]:
                if not isinstance(completed, dt.datetime) or completed.utcoffset() != dt.timedelta(0):
                    fail(f"{what}: COMPLETED in UTC", "a UTC date-time", completed)
                expect(f"{what}: PERCENT-COMPLETE", 100, int(todo.get("PERCENT-COMPLETE")))
            elif completed is not None:
                fail(f"{what}: no COMPLETED before it is done", None, completed)
            for name in ("DTSTAMP", "LAST-MODIFIED", "CREATED"):
                stamp = todo.decoded(name) if name in todo else None
                if not isinstance(stamp, dt.datetime) or stamp.utcoffset() != dt.timedelta(0):
                    fail(f"{what}: {name} in UTC", "a UTC date-time", stamp)
            sequence = todo.decoded("SEQUENCE") if "SEQUENCE" in todo else None
            if not isinstance(sequence, int) or sequence < 0:
                fail(f"{what}: SEQUENCE", "an integer >= 0", sequence)
            sequences[(case["name"], want["uid"])] = sequence
    for rule in manifest["sequences"]:
        before = sequences[(rule["before"], rule["uid"])]
        after = sequences[(rule["after"], rule["uid"])]
        if not after > before:
            fail(f"icalendar, SEQUENCE of {rule['uid']} after its {rule['why']}",
                 f"greater than {before}", after)
    print(f"ok   icalendar {icalendar.__version__} read {len(manifest['cases'])} to-do calendars "
          f"and {len(manifest['sequences'])} SEQUENCE changes as the manifest says", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="the server's root, such as http://127.0.0.1:8080")
    parser.add_argument("--out", required=True, type=Path,
                        help="directory for the calendars and manifest.json")
    parser.add_argument("--verify-only", action="store_true",
                        help="only read OUT/manifest.json again with icalendar")
    args = parser.parse_args(argv)
    try:
        if args.verify_only:
            manifest = args.out / "manifest.json"
        else:
            if not args.base_url:
                parser.error("--base-url is needed unless --verify-only")
            args.out.mkdir(parents=True, exist_ok=True)
            manifest = collect(Api(args.base_url, os.environ.get("LHS_API_TOKEN")), args.out)
        verify(manifest)
    except CheckFailure as failure:
        print(f"FAIL todo_check: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
