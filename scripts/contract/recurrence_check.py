#!/usr/bin/env python3
"""The series' recurrence, as the service expands it, compared with python-dateutil's `rrule`:
an implementation of RFC 5545 written independently of this service.

For each rule of the table (monthly and weekly rules, ordinals, BYSETPOS, BYMONTH, INTERVAL,
COUNT and the three forms of UNTIL, start times in New York's spring gap and repeated hour,
London and Sydney), the series is given the rule, its zone, its start time and the date the rule
counts from (`recurrence_start`), and `POST /api/v1/series/plan` with `preview` says which
rounds it would make over the range: their local dates and their start instants, which must be
dateutil's, every one. Run against a server on a fresh database (a round on a date would make
it `existing` rather than `created`), with an organizer's token in LHS_API_TOKEN:

    recurrence_check.py --base-url http://127.0.0.1:8080

Where the service's documented meaning differs from dateutil's defaults, the case is
translated to the same question, never the answer:
- UNTIL as a date (YYYYMMDD) includes that whole local day for the service; dateutil reads it
  as midnight, so it is given YYYYMMDDT235959.
- A UTC UNTIL needs a zone-aware DTSTART in dateutil; the other cases use a naive one
  (floating), which is how the service expands: local dates, then the zone.
The instant of each occurrence comes from zoneinfo with fold=0, which reads a time in the
spring gap with the offset before it and a repeated time as its first occurrence, as RFC 5545
says and the service does.
"""

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

# (rule, zone, the date it counts from, start time, from, to)
CASES = [
    ("FREQ=MONTHLY;BYDAY=3TH", "America/New_York", "2019-01-17", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYDAY=-1TH", "America/New_York", "2019-01-31", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYDAY=TH;BYSETPOS=3", "America/New_York", "2019-01-01", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYDAY=TH;BYSETPOS=-1", "America/New_York", "2019-01-01", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "America/New_York", "2019-01-01", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1,-1", "America/New_York", "2019-01-01", "12:00", "2021-01-01", "2025-12-31"),
    ("FREQ=MONTHLY;BYDAY=SA,SU;BYSETPOS=2,3,-2", "America/New_York", "2019-01-01", "09:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYDAY=1MO,-1FR", "America/New_York", "2019-01-01", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYDAY=1MO,-1FR;BYSETPOS=-1", "America/New_York", "2019-01-01", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYDAY=5TH", "America/New_York", "2019-01-01", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYDAY=-5MO", "America/New_York", "2019-01-01", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYDAY=2TU,4TU", "America/New_York", "2019-01-01", "16:30", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYDAY=TU", "America/New_York", "2019-01-01", "12:00", "2019-01-01", "2021-12-31"),
    ("FREQ=MONTHLY;INTERVAL=2;BYDAY=3TH", "America/New_York", "2019-02-21", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;INTERVAL=3;BYDAY=2WE", "America/New_York", "2019-01-09", "12:00", "2021-03-01", "2026-02-28"),
    ("FREQ=MONTHLY;INTERVAL=12;BYDAY=3TH", "America/New_York", "2019-06-20", "12:00", "2020-01-01", "2024-12-31"),
    ("FREQ=MONTHLY;INTERVAL=5;BYMONTH=1,6;BYDAY=1FR", "America/New_York", "2019-01-01", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY", "America/New_York", "2019-01-31", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYMONTH=2", "America/New_York", "2019-01-30", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYMONTH=2;BYDAY=5TH", "America/New_York", "2019-01-01", "12:00", "2020-01-01", "2024-12-31"),
    ("FREQ=MONTHLY;BYMONTH=1,2,3,4,5,9,10,11,12;BYDAY=3TH", "America/New_York", "2019-01-17", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYDAY=3TH;COUNT=7", "America/New_York", "2019-01-17", "12:00", "2019-04-01", "2020-12-31"),
    ("FREQ=MONTHLY;INTERVAL=7;BYDAY=-2WE;COUNT=30", "America/New_York", "2015-03-01", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=MONTHLY;BYDAY=3TH;UNTIL=20191121T170000Z", "America/New_York", "2019-01-17", "12:00", "2019-01-01", "2019-12-31"),
    ("FREQ=MONTHLY;BYDAY=3TH;UNTIL=20191121T165959Z", "America/New_York", "2019-01-17", "12:00", "2019-01-01", "2019-12-31"),
    ("FREQ=MONTHLY;BYDAY=3TH;UNTIL=20190321T160000Z", "America/New_York", "2019-01-17", "12:00", "2019-01-01", "2019-12-31"),
    ("FREQ=MONTHLY;BYDAY=3TH;UNTIL=20191121", "America/New_York", "2019-01-17", "12:00", "2019-01-01", "2019-12-31"),
    ("FREQ=MONTHLY;BYDAY=3TH;UNTIL=20191121T115959", "America/New_York", "2019-01-17", "12:00", "2019-01-01", "2019-12-31"),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TH", "America/New_York", "2019-01-17", "12:00", "2021-01-01", "2025-12-31"),
    ("FREQ=WEEKLY;BYMONTH=9,10,11,12;BYDAY=TU,TH", "America/New_York", "2019-09-03", "12:00", "2019-01-01", "2021-12-31"),
    ("FREQ=WEEKLY;INTERVAL=3;BYDAY=MO,FR", "America/New_York", "2019-01-02", "12:00", "2019-01-01", "2020-12-31"),
    ("FREQ=WEEKLY", "America/New_York", "2019-03-07", "12:00", "2019-01-01", "2020-12-31"),
    ("FREQ=WEEKLY;BYDAY=SU", "America/New_York", "2019-01-06", "02:30", "2019-01-01", "2021-12-31"),
    ("FREQ=WEEKLY;BYDAY=SU", "America/New_York", "2019-01-06", "01:30", "2019-01-01", "2021-12-31"),
    ("FREQ=WEEKLY;INTERVAL=52;BYDAY=SA,SU;COUNT=24", "America/New_York", "2010-01-02", "12:00", "2019-01-01", "2023-12-31"),
    ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;COUNT=400", "America/New_York", "2018-06-01", "12:00", "2019-01-01", "2019-12-31"),
    ("FREQ=WEEKLY;BYDAY=SU;UNTIL=20211107T060000Z", "America/New_York", "2021-09-05", "01:30", "2021-01-01", "2021-12-31"),
    ("FREQ=WEEKLY;BYDAY=SU", "Europe/London", "2019-01-06", "01:30", "2019-01-01", "2021-12-31"),
    ("FREQ=MONTHLY;BYDAY=1SU", "Australia/Sydney", "2019-01-06", "02:30", "2019-01-01", "2023-12-31"),
]


def expected(rule, zone_name, dtstart, start_time, first, last):
    """What dateutil says: `date/UTC instant` of each occurrence in [first, last]."""
    zone = ZoneInfo(zone_name)
    utc_until = re.search(r"UNTIL=\d{8}T\d{6}Z", rule) is not None
    rule = re.sub(r"UNTIL=(\d{8})(?=;|$)", r"UNTIL=\1T235959", rule)
    tz = zone if utc_until else None
    start = datetime.combine(dtstart, start_time, tzinfo=tz)
    occurrences = rrulestr(rule, dtstart=start).between(
        datetime.combine(first, time(0, 0), tzinfo=tz),
        datetime.combine(last, time(23, 59, 59), tzinfo=tz),
        inc=True,
    )
    out = []
    for at in occurrences:
        local = datetime.combine(at.date(), start_time, tzinfo=zone)
        instant = local.astimezone(timezone.utc)
        out.append(f"{at.date().isoformat()}/{instant.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    return out


class Api:
    def __init__(self, base_url, token):
        self.base = base_url.rstrip("/") + "/api/v1"
        self.token = token

    def send(self, method, path, body, content_type="application/json"):
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            sys.exit(f"{method} {path} {json.dumps(body)}: {error.code} {error.read().decode()}")


def ours(api, case):
    rule, zone, dtstart, start_time, first, last = case
    api.send("PATCH", "/series", {
        "timezone": zone,
        "default_start_time": start_time,
        "default_duration_minutes": 60,
        "recurrence": rule,
        "recurrence_start": dtstart,
        "skipped_dates": [],
    }, "application/merge-patch+json")
    plan = api.send("POST", "/series/plan", {"from": first, "to": last, "preview": True})
    if plan["existing"] or plan["skipped"]:
        sys.exit(f"{case}: the database is not fresh: {plan['existing']} {plan['skipped']}")
    out = []
    for item in plan["created"]:
        instant = datetime.fromisoformat(item["starts_at"].replace("Z", "+00:00"))
        out.append(f"{item['date']}/{instant.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}")
        local = datetime.fromisoformat(item["starts_at_local"])
        if local.strftime("%H:%M") != start_time and not in_gap(zone, item["date"], start_time):
            sys.exit(f"{case}: {item['date']} starts at {item['starts_at_local']}, not {start_time}")
    return out


def in_gap(zone, day, start_time):
    """Whether `start_time` does not exist on `day` in `zone` (the hour skipped in spring)."""
    naive = datetime.combine(date.fromisoformat(day), time.fromisoformat(start_time))
    there = naive.replace(tzinfo=ZoneInfo(zone))
    back = there.astimezone(timezone.utc).astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    return back != naive


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    args = parser.parse_args()
    api = Api(args.base_url, os.environ["LHS_API_TOKEN"])
    total = 0
    for case in CASES:
        rule, zone, dtstart, start_time, first, last = case
        theirs = expected(rule, zone, date.fromisoformat(dtstart), time.fromisoformat(start_time),
                          date.fromisoformat(first), date.fromisoformat(last))
        mine = ours(api, case)
        if mine != theirs:
            missing = [x for x in theirs if x not in mine]
            extra = [x for x in mine if x not in theirs]
            sys.exit(f"{case}: the service and dateutil disagree\n"
                     f"  only dateutil: {missing[:10]}\n  only the service: {extra[:10]}")
        total += len(mine)
    # The table is not vacuous: it compares well over a thousand occurrences.
    if total < 1000:
        sys.exit(f"only {total} occurrences were compared")
    print(f"recurrence: {len(CASES)} rules, {total} occurrences, dates and start instants as "
          f"python-dateutil expands them")


if __name__ == "__main__":
    main()
