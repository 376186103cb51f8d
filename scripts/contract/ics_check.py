#!/usr/bin/env python3
"""The iCalendar feeds (RFC 5545), read by parsers no one here wrote.

Drives a live server started with `serve --demo` (and, for the URL property, `--public-url
https://rounds.example.org`): fetches `GET /api/v1/rounds.ics` and `GET /api/v1/rounds/{id}.ics`
before and after changes it makes as an admin (`Authorization: Bearer $LHS_API_TOKEN`), checks
the text of every answer (media type, CRLF, lines folded at 75 octets within UTF-8 characters),
and writes each calendar with what it must contain to OUT/manifest.json. The calendars are then
read with Python `icalendar` here and with `ical.js` (Thunderbird's parser) by
scripts/contract/ts/ics-check.mjs, which checks the same manifest:

    python scripts/contract/ics_check.py --base-url http://127.0.0.1:8080 --out DIR
    node scripts/contract/ts/ics-check.mjs DIR/manifest.json

What the manifest asks is stated without reading the feed: from the LHS Rounds page (the ten
2019 rounds at 12:00-13:00 New York time), from the JSON API's answers, and from the strings the
check itself wrote. Times are checked as instants: each parser turns the event's local time into
UTC with the VTIMEZONE of the feed (not a time zone database of its own), and the instant must be
the expected one; turned back into that zone's local time, and independently into New York time
with the platform's tz database, it must read the expected wall-clock time.
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
from zoneinfo import ZoneInfo

import httpx
import icalendar
from icalendar.prop import vDuration

from checks import CheckFailure, expect, fail, ok

API = "/api/v1"
CONTENT_TYPE = "text/calendar; charset=utf-8"
TBA = "LHS Rounds: topic to be announced"
PUBLIC_URL = "https://rounds.example.org"
DOMAIN = "rounds.example.org"
ZONE = "America/New_York"
UTC = dt.timezone.utc

# The page's ten rounds of 2019: (date, title or None, location), all at 12-1pm New York time.
PAGE_2019 = [
    ("2019-01-17", "What is the LHS and why is it important?", "3601 Main St, PVLSI"),
    ("2019-02-14", "The LHS at Baystate: mission, staff, and projects of Epi/Biostat, IHDPS, "
                   "Analytics, and DHQ/Operations Excellence", None),
    ("2019-04-25", "How can we use patient comments to improve care?", None),
    ("2019-05-23", "SWOT Analysis", None),
    ("2019-06-20", "SWOT Analysis continued", None),
    ("2019-07-18", None, None),
    ("2019-09-26", None, None),
    ("2019-10-24", None, None),
    ("2019-11-21", None, None),
    ("2019-12-19", None, None),
]
# January is EST (UTC-5), April EDT (UTC-4): the same 12:00 is two different hours in UTC.
DST_PAIR = {"2019-01-17": "2019-01-17T17:00:00Z", "2019-04-25": "2019-04-25T16:00:00Z"}

# Strings that must come back exactly: TEXT escaping (RFC 5545 §3.3.11) and folding (§3.1).
ACCENTED = ("Réunion médicale à l'hôpital: qualité, sécurité; équité — ça évolue! "
            "Ünïcödé àéîõü çñ ÀÉÎÕÜ ")
ACCENTED_300 = (ACCENTED * 5)[:300]
assert len(ACCENTED_300) == 300
ESCAPES = [
    # (title, description)
    ("Quality; safety, and equity: a panel; with commas, semicolons, and a back\\slash",
     "First line\nSecond line; with, punctuation\n\nAfter an empty line: \"quoted\" \\ done"),
    ("🩺 Rounds 🏥: emoji in the summary 👩🏽‍⚕️👨‍👩‍👧",
     "Emoji 🧬🦠💉 in the description, and a line break\nthen 🫀 at the start of a line"),
    (ACCENTED_300, ACCENTED_300 + "\n" + ACCENTED_300[::-1]),
]


# ---- talking to the server --------------------------------------------------------------------


class Api:
    def __init__(self, base_url: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=30)
        self.anonymous = httpx.Client(base_url=base_url, timeout=30)

    def json(self, method: str, path: str, status: int, body: Any = None) -> Any:
        response = self.http.request(method, API + path, json=body)
        if response.status_code != status:
            fail(f"{method} {path} {json.dumps(body)[:200] if body is not None else ''}",
                 status, f"{response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def calendar(self, path: str, params: dict[str, str] | None = None) -> str:
        """A calendar, with the checks of its text that no parser makes."""
        response = self.http.get(API + path, params=params)
        what = f"GET {path} {params or ''}"
        if response.status_code != 200:
            fail(what, 200, f"{response.status_code} {response.text[:500]}")
        expect(f"{what}: Content-Type", CONTENT_TYPE, response.headers.get("content-type"))
        check_text(what, response.content)
        return response.content.decode("utf-8")


def check_text(what: str, raw: bytes) -> None:
    """RFC 5545 §3.1: CRLF line ends, no line over 75 octets, folded between UTF-8 characters."""
    if not raw.startswith(b"BEGIN:VCALENDAR\r\n") or not raw.endswith(b"END:VCALENDAR\r\n"):
        fail(f"{what}: a calendar object from BEGIN:VCALENDAR to END:VCALENDAR, CRLF-terminated",
             "BEGIN:VCALENDAR ... END:VCALENDAR\\r\\n", raw[:40] + b" ... " + raw[-40:])
    lines = raw.split(b"\r\n")[:-1]
    for number, physical in enumerate(lines, 1):
        if b"\r" in physical or b"\n" in physical:
            fail(f"{what}: line {number} has a bare CR or LF (lines end with CRLF)", "no CR/LF",
                 physical)
        if len(physical) > 75:
            fail(f"{what}: line {number} is longer than 75 octets", "<= 75", len(physical))
        try:
            physical.decode("utf-8")
        except UnicodeDecodeError:
            fail(f"{what}: line {number} was folded inside a UTF-8 character", "whole characters",
                 physical)
        if not physical:
            fail(f"{what}: line {number} is empty", "no empty line", physical)


def escaped(text: str) -> str:
    """A TEXT value as RFC 5545 §3.3.11 writes it."""
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\n", "\\n"))


def content_lines(text: str) -> list[str]:
    """The unfolded content lines (RFC 5545 §3.1: CRLF and one space or tab removed)."""
    return re.sub(r"\r\n[ \t]", "", text).split("\r\n")


def check_escaped(what: str, text: str, name: str, value: str) -> None:
    """Parsers forgive an unescaped `;` or `,`; the text itself must have them escaped. A
    DESCRIPTION holds the round's description among its other parts (speakers, the disclosures'
    address), each part apart from the next by an empty line."""
    lines = [line for line in content_lines(text) if line.startswith(f"{name}:")]
    if name != "DESCRIPTION":
        expect(f"{what}: the {name} content line, escaped", [f"{name}:{escaped(value)}"], lines)
        return
    expect(f"{what}: one {name} content line", 1, len(lines))
    if escaped(value) not in lines[0]:
        fail(f"{what}: the {name} content line holds the description, escaped", escaped(value), lines[0])


# ---- what the feeds must contain --------------------------------------------------------------


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def utc_text(at: dt.datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_text(at: dt.datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S")


def event_of(round_: dict[str, Any], zone: str, **extra: Any) -> dict[str, Any]:
    """The event a round must be, from its JSON (what the API answered)."""
    starts, ends = instant(round_["starts_at"]), instant(round_["ends_at"])
    event: dict[str, Any] = {
        "uid": f"round-{round_['id']}@{DOMAIN}",
        "summary": round_.get("title") or TBA,
        "location": round_["location"],
        "status": "CANCELLED" if round_["status"] == "cancelled" else "CONFIRMED",
        "url": f"{PUBLIC_URL}{API}/rounds/{round_['id']}",
        "start_utc": utc_text(starts),
        "end_utc": utc_text(ends),
        "start_local": local_text(starts, zone),
        "end_local": local_text(ends, zone),
    }
    contains = [f"{s['display_name']} ({s['role']})" for s in round_["speakers"]]
    contains += [d["name"] for d in round_["departments"]]
    # Every event names where learners read the round's disclosures (ACCME Standard 3).
    contains.append(f"Disclosures of financial relationships: {PUBLIC_URL}{round_['disclosure_statement_url']}")
    description = extra.pop("description", round_.get("description"))
    if description:
        contains.append(description)
    event["description_contains"] = contains
    event.update(extra)
    return event


class Manifest:
    def __init__(self, out: Path, series: dict[str, Any]) -> None:
        self.out = out
        self.series = series
        self.cases: list[dict[str, Any]] = []
        self.sequences: list[dict[str, Any]] = []
        self.problems: list[dict[str, Any]] = []

    def add(self, name: str, text: str, events: list[dict[str, Any]]) -> str:
        file = f"{len(self.cases):02d}-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.ics"
        (self.out / file).write_text(text, encoding="utf-8", newline="")
        self.cases.append({
            "name": name,
            "file": file,
            "calendar": {
                "VERSION": "2.0",
                "CALSCALE": "GREGORIAN",
                "METHOD": "PUBLISH",
                "X-WR-CALNAME": self.series["name"],
                "X-WR-TIMEZONE": self.series["timezone"],
            },
            # Both must be one hour; REFRESH-INTERVAL must say VALUE=DURATION.
            "durations": {"REFRESH-INTERVAL": 3600, "X-PUBLISHED-TTL": 3600},
            "timezone": self.series["timezone"],
            "events": events,
        })
        return name

    def sequence(self, uid: str, before: str, after: str, relation: str, why: str) -> None:
        self.sequences.append({"uid": uid, "before": before, "after": after,
                               "relation": relation, "why": why})

    def write(self) -> Path:
        path = self.out / "manifest.json"
        path.write_text(json.dumps({"cases": self.cases, "sequences": self.sequences}, indent=1,
                                   ensure_ascii=False), encoding="utf-8")
        return path


# ---- the scenario -----------------------------------------------------------------------------


def at_noon(day: str, zone: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=ZoneInfo(zone))


def round_body(day: str, zone: str, **fields: Any) -> dict[str, Any]:
    body = {"starts_at": at_noon(day, zone).isoformat(), "ends_at": at_noon(day, zone, 13).isoformat(),
            "location": "BMC – MassMutual 5"}
    body.update(fields)
    return body


def collect(api: Api, out: Path) -> Path:
    series = api.json("GET", "/series", 200)
    expect("the demo series' time zone", ZONE, series["timezone"])
    zone = series["timezone"]
    m = Manifest(out, series)
    window_2019 = {"from": "2019-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"}

    # -- the page's ten rounds of 2019 ---------------------------------------------------------
    listed = api.json("GET", "/rounds?from=2019-01-01T00:00:00Z&to=2020-01-01T00:00:00Z&limit=100", 200)
    by_day = {local_text(instant(r["starts_at"]), zone)[:10]: r for r in listed["items"]}
    expect("the demo's 2019 rounds (JSON list), by local date", [d for d, _, _ in PAGE_2019],
           sorted(by_day))
    events = []
    for day, title, location in PAGE_2019:
        r = by_day[day]
        # The page's facts, not the API's: 12:00-13:00 in New York on that day.
        starts = at_noon(day, ZONE)
        extra: dict[str, Any] = {
            "summary": title or TBA,
            "start_local": f"{day}T12:00:00", "end_local": f"{day}T13:00:00",
            "start_utc": utc_text(starts), "end_utc": utc_text(starts + dt.timedelta(hours=1)),
        }
        if day in DST_PAIR:
            extra["start_utc"] = DST_PAIR[day]
        if location:
            extra["location"] = location
        events.append(event_of(r, zone, **extra))
    feed_2019 = api.calendar("/rounds.ics", window_2019)
    m.add("demo 2019 feed", feed_2019, events)
    lagu = [s for s in api.json("GET", "/speakers?limit=100", 200)["items"]
            if s["full_name"] == "Tara Lagu"]
    expect("the demo has Tara Lagu", 1, len(lagu))
    m.add("2019 feed, speaker Tara Lagu",
          api.calendar("/rounds.ics", {**window_2019, "speaker_id": str(lagu[0]["id"])}),
          [e for e in events if e["start_local"][:10] in ("2019-02-14", "2019-04-25")])
    ok("the demo's 2019 feed: ten rounds at 12:00 New York time (written for both parsers)")

    # the DST pair, each alone, from the one-event answer
    for day in DST_PAIR:
        r = by_day[day]
        m.add(f"one round {day}", api.calendar(f"/rounds/{r['id']}.ics"),
              [e for e in events if e["uid"] == f"round-{r['id']}@{DOMAIN}"])

    # a subscribed calendar revalidates: ETag, then 304
    response = api.http.get(API + "/rounds.ics", params=window_2019)
    etag = response.headers.get("etag")
    if not etag:
        fail("GET /rounds.ics: an ETag", "an ETag", dict(response.headers))
    again = api.http.get(API + "/rounds.ics", params=window_2019, headers={"If-None-Match": etag})
    expect("GET /rounds.ics with If-None-Match: the current ETag", 304, again.status_code)
    anonymous = api.anonymous.get(API + "/rounds.ics", params=window_2019)
    expect("GET /rounds.ics without a token (calendar apps subscribe without one)", 200,
           anonymous.status_code)
    expect("the feed without a token is the same calendar", feed_2019, anonymous.text)
    ok("the feed revalidates (ETag, 304) and is served without a token")

    # -- the default window: the past 12 months and everything upcoming -------------------------
    now = dt.datetime.now(UTC)
    everything = api.json("GET", "/rounds?limit=100", 200)["items"]
    year_ago = now.replace(year=now.year - 1)
    in_window = [r for r in everything if instant(r["starts_at"]) >= year_ago]
    expect_upcoming = [r for r in in_window if instant(r["starts_at"]) > now]
    if len(expect_upcoming) < 3:
        fail("serve --demo generates three upcoming rounds", ">= 3 upcoming", len(expect_upcoming))
    m.add("default window", api.calendar("/rounds.ics"), [event_of(r, zone) for r in in_window])
    ok(f"the default window: {len(in_window)} rounds, none of 2019")

    # -- 404 ------------------------------------------------------------------------------------
    for path in ("/rounds/abc.ics", "/rounds/2147483647.ics"):
        response = api.http.get(API + path)
        expect(f"GET {path}: status", 404, response.status_code)
        expect(f"GET {path}: Content-Type", "application/problem+json",
               response.headers.get("content-type"))
        expect(f"GET {path}: the problem's status", 404, response.json().get("status"))
    ok("GET /rounds/abc.ics and an unknown id: 404 problem+json")

    # -- escaping and folding -------------------------------------------------------------------
    made: list[dict[str, Any]] = []
    events_escaped = []
    for index, (title, description) in enumerate(ESCAPES):
        r = api.json("POST", "/rounds", 201,
                     round_body(f"2031-0{index + 1}-0{index + 2}", zone, title=title,
                                description=description))
        expect("the API keeps the title as sent", title, r["title"])
        expect("the API keeps the description as sent", description, r["description"])
        made.append(r)
        events_escaped.append(event_of(r, zone, summary=title, description=description))
    location = "Room 5; building B, floor 2 \\ east wing"
    r = api.json("POST", "/rounds", 201, round_body("2031-04-10", zone, location=location))
    made.append(r)
    events_escaped.append(event_of(r, zone, summary=TBA, location=location))
    window_2031 = {"from": "2031-01-01T00:00:00Z", "to": "2031-05-01T00:00:00Z"}
    m.add("escaping and folding", api.calendar("/rounds.ics", window_2031), events_escaped)
    for r, e in zip(made, events_escaped):
        text = api.calendar(f"/rounds/{r['id']}.ics")
        for name, value in (("SUMMARY", r["title"] or TBA), ("LOCATION", r["location"]),
                            ("DESCRIPTION", r["description"])):
            if value:
                check_escaped(f"GET /rounds/{r['id']}.ics", text, name, value)
        m.add(f"one round {r['id']} escaped", text, [e])
    ok("rounds with ; , \\ line breaks, emoji and 300 accented characters written for both parsers")

    # -- SEQUENCE -------------------------------------------------------------------------------
    r = api.json("POST", "/rounds", 201, round_body("2031-07-17", zone, title="Sequence check"))
    uid = f"round-{r['id']}@{DOMAIN}"
    made.append(r)

    def snapshot(name: str, round_: dict[str, Any]) -> str:
        return m.add(name, api.calendar(f"/rounds/{round_['id']}.ics"), [event_of(round_, zone)])

    previous = snapshot("sequence: created", r)
    changes: list[tuple[str, str, dict[str, Any], str]] = [
        ("PATCH", "the title only", {"title": "Sequence check, renamed"}, "same"),
        ("PATCH", "the time (an hour later)",
         {"starts_at": at_noon("2031-07-17", zone, 13).isoformat(),
          "ends_at": at_noon("2031-07-17", zone, 14).isoformat()}, "greater"),
        ("PUT", "the title only",
         None, "same"),
        ("PUT", "the time (another day)", None, "greater"),
        ("PATCH", "the location", {"location": "BMC – MassMutual 6"}, "greater"),
        ("PATCH", "the description only", {"description": "Now with a description"}, "same"),
        ("PATCH", "the status: cancelled", {"status": "cancelled"}, "greater"),
    ]
    for method, what, body, relation in changes:
        if method == "PUT":
            body = {k: r[k] for k in ("title", "description", "starts_at", "ends_at", "location",
                                      "status")}
            body["speakers"] = []
            body["department_ids"] = []
            if what == "the title only":
                body["title"] = "Sequence check, renamed by PUT"
            else:
                body["starts_at"] = at_noon("2031-07-24", zone).isoformat()
                body["ends_at"] = at_noon("2031-07-24", zone, 13).isoformat()
        r = api.json(method, f"/rounds/{r['id']}", 200, body)
        name = snapshot(f"sequence: after {method} {what}", r)
        m.sequence(uid, previous, name, relation, f"{method} that changes {what}")
        previous = name
    cancelled = r
    made[-1] = r
    ok("SEQUENCE snapshots after PATCH/PUT of the title, time, location, description and status")

    # -- a cancelled round stays in the feed ------------------------------------------------------
    window_july = {"from": "2031-07-01T00:00:00Z", "to": "2031-08-01T00:00:00Z"}
    m.add("cancelled round stays in the feed", api.calendar("/rounds.ics", window_july),
          [event_of(cancelled, zone)])
    expect("the cancelled round's status (JSON)", "cancelled", cancelled["status"])

    # -- filters --------------------------------------------------------------------------------
    department = api.json("POST", "/departments", 201,
                          {"name": "Contract Check Department, ICS", "abbreviation": "CCD"})
    speaker = api.json("POST", "/speakers", 201,
                       {"full_name": "Zoë Ångström-Nuñez", "credentials": ["MD", "PhD"]})
    other = api.json("POST", "/speakers", 201, {"full_name": "Oskar Other"})
    with_speaker = api.json("POST", "/rounds", 201, round_body(
        "2031-09-11", zone, title="Filtered by speaker and department",
        description="A round with a speaker, a moderator and a department",
        speakers=[{"speaker_id": speaker["id"], "role": "presenter"},
                  {"speaker_id": other["id"], "role": "moderator"}],
        department_ids=[department["id"]]))
    only_other = api.json("POST", "/rounds", 201, round_body(
        "2031-10-16", zone, title="Only the other speaker",
        speakers=[{"speaker_id": other["id"], "role": "panelist"}]))
    made += [with_speaker, only_other]
    e_with, e_other = event_of(with_speaker, zone), event_of(only_other, zone)
    window_late = {"from": "2031-09-01T00:00:00Z", "to": "2031-11-01T00:00:00Z"}
    m.add("filter from/to", api.calendar("/rounds.ics", window_late), [e_with, e_other])
    m.add("filter speaker_id", api.calendar("/rounds.ics", {"speaker_id": str(speaker["id"])}),
          [e_with])
    m.add("filter speaker_id (two rounds)",
          api.calendar("/rounds.ics", {"speaker_id": str(other["id"])}), [e_with, e_other])
    m.add("filter department_id",
          api.calendar("/rounds.ics", {"department_id": str(department["id"])}), [e_with])
    m.add("filter status=cancelled",
          api.calendar("/rounds.ics", {"status": "cancelled", "from": "2031-01-01T00:00:00Z"}),
          [event_of(cancelled, zone)])
    scheduled_2031 = [event_of(x, zone) for x in made if x["status"] == "scheduled"]
    m.add("filter status=scheduled",
          api.calendar("/rounds.ics", {"status": "scheduled", "from": "2031-01-01T00:00:00Z",
                                       "to": "2032-01-01T00:00:00Z"}), scheduled_2031)
    m.add("filter from/to, an empty window",
          api.calendar("/rounds.ics", {"from": "2035-01-01T00:00:00Z", "to": "2035-12-31T00:00:00Z"}), [])
    m.add("filter speaker_id of no speaker",
          api.calendar("/rounds.ics", {"speaker_id": "2147483647"}), [])
    m.add("filter department_id of no department",
          api.calendar("/rounds.ics", {"department_id": "2147483647"}), [])
    m.add("filters combined", api.calendar("/rounds.ics", {
        "speaker_id": str(other["id"]), "department_id": str(department["id"]), **window_late}),
        [e_with])
    ok("filters: speaker_id, department_id, status, from/to, combined, and ones matching nothing")

    # clean up what the check made (the demo's rounds stay)
    for x in made:
        api.json("DELETE", f"/rounds/{x['id']}", 204)
    for s in (speaker, other):
        api.json("DELETE", f"/speakers/{s['id']}", 204)
    api.json("DELETE", f"/departments/{department['id']}", 204)
    gone = api.calendar("/rounds.ics", {"from": "2031-01-01T00:00:00Z"})
    if "BEGIN:VEVENT" in gone:
        fail("after deleting its rounds, the 2031 feed is empty", "no VEVENT", gone)
    return m.write()


# ---- reading the manifest with icalendar ------------------------------------------------------


def text_of(component: Any, name: str) -> str | None:
    value = component.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        fail(f"{name} appears once", 1, len(value))
    return str(value)


def seconds_of(value: Any) -> float:
    if hasattr(value, "dt"):
        value = value.dt
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return vDuration.from_ical(str(value)).total_seconds()


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
            fail(f"{where}: no parse errors in the calendar", [], cal.errors)
        for name, value in case["calendar"].items():
            expect(f"{where}: {name}", value, text_of(cal, name))
        if not text_of(cal, "PRODID"):
            fail(f"{where}: PRODID", "a PRODID", None)
        for name, seconds in case["durations"].items():
            got = cal.get(name)
            if got is None:
                fail(f"{where}: {name}", "PT1H", None)
            expect(f"{where}: {name} in seconds", float(seconds), seconds_of(got))
        expect(f"{where}: REFRESH-INTERVAL's VALUE", "DURATION",
               cal["REFRESH-INTERVAL"].params.get("VALUE"))

        zones = cal.timezones
        expect(f"{where}: one VTIMEZONE", [case["timezone"]], [z.tz_name for z in zones])
        kinds = {sub.name for sub in zones[0].subcomponents}
        if case["timezone"] == ZONE and kinds != {"STANDARD", "DAYLIGHT"}:
            fail(f"{where}: the VTIMEZONE of {ZONE} has its rules (standard and daylight time)",
                 {"STANDARD", "DAYLIGHT"}, kinds)
        # The zone as the feed defines it, not icalendar's own lookup of the TZID.
        feed_zone = zones[0].to_tz(lookup_tzid=False)
        tz_database = ZoneInfo(case["timezone"])

        events = cal.events
        for sub in cal.subcomponents:
            if sub.errors:
                fail(f"{where}: no parse errors in {sub.name}", [], sub.errors)
        uids = [text_of(e, "UID") for e in events]
        expect(f"{where}: the events' UIDs", sorted(x["uid"] for x in case["events"]),
               sorted(u or "" for u in uids))
        by_uid = dict(zip(uids, events))
        for want in case["events"]:
            event = by_uid[want["uid"]]
            what = f"{where}, {want['uid']}"
            expect(f"{what}: SUMMARY", want["summary"], text_of(event, "SUMMARY"))
            expect(f"{what}: LOCATION", want["location"], text_of(event, "LOCATION"))
            expect(f"{what}: STATUS", want["status"], text_of(event, "STATUS"))
            expect(f"{what}: URL", want["url"], text_of(event, "URL"))
            description = text_of(event, "DESCRIPTION")
            if "description" in want:
                expect(f"{what}: DESCRIPTION", want["description"], description)
            for part in want.get("description_contains", []):
                if description is None or part not in description:
                    fail(f"{what}: DESCRIPTION contains", part, description)
            for name in ("DTSTAMP", "LAST-MODIFIED"):
                stamp = event.decoded(name) if name in event else None
                if not isinstance(stamp, dt.datetime) or stamp.utcoffset() != dt.timedelta(0):
                    fail(f"{what}: {name} in UTC", "a UTC date-time", stamp)
            sequence = event.decoded("SEQUENCE") if "SEQUENCE" in event else None
            if not isinstance(sequence, int) or sequence < 0:
                fail(f"{what}: SEQUENCE", "an integer >= 0", sequence)
            sequences[(case["name"], want["uid"])] = sequence
            for prop, utc_key, local_key in (("DTSTART", "start_utc", "start_local"),
                                             ("DTEND", "end_utc", "end_local")):
                value = event.get(prop)
                if value is None:
                    fail(f"{what}: {prop}", "a date-time", None)
                expect(f"{what}: {prop};TZID", case["timezone"], value.params.get("TZID"))
                wall = value.dt
                if not isinstance(wall, dt.datetime):
                    fail(f"{what}: {prop} is a date-time", "datetime", wall)
                # The feed's local time, turned into an instant by the feed's VTIMEZONE.
                at = wall.replace(tzinfo=None).replace(tzinfo=feed_zone).astimezone(UTC)
                expect(f"{what}: {prop} as an instant (through the feed's VTIMEZONE)",
                       want[utc_key], utc_text(at))
                expect(f"{what}: {prop}, that instant in the feed's VTIMEZONE",
                       want[local_key], at.astimezone(feed_zone).strftime("%Y-%m-%dT%H:%M:%S"))
                expect(f"{what}: {prop}, that instant in {case['timezone']} (tz database)",
                       want[local_key], at.astimezone(tz_database).strftime("%Y-%m-%dT%H:%M:%S"))
    for rule in manifest["sequences"]:
        before = sequences[(rule["before"], rule["uid"])]
        after = sequences[(rule["after"], rule["uid"])]
        holds = after > before if rule["relation"] == "greater" else after == before
        if not holds:
            fail(f"icalendar, SEQUENCE of {rule['uid']} after a {rule['why']}",
                 f"{rule['relation']} than {before}" if rule["relation"] == "greater"
                 else f"the same ({before})", after)
    print(f"ok   icalendar {icalendar.__version__} read {len(manifest['cases'])} calendars "
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
        print(f"FAIL ics_check: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
