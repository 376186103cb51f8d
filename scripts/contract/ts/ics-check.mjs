// Reads the calendars that scripts/contract/ics_check.py fetched from a live server with ical.js,
// the iCalendar parser of Thunderbird, and checks them against the same manifest as Python's
// `icalendar` does there:
//
//   node scripts/contract/ts/ics-check.mjs DIR/manifest.json
//
// Each event's local DTSTART/DTEND is turned into an instant with the VTIMEZONE of the feed
// (ical.js resolves the TZID within the calendar, and the check refuses any other zone), then
// back into that zone's local time, and into New York time with the platform's own tz database
// (Intl), and every value must be the manifest's. TEXT values must come back exactly as written.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import ICAL from "ical.js";

class CheckFailure extends Error {}

function fail(what, expected, got) {
  throw new CheckFailure(
    `${what}\n    expected: ${JSON.stringify(expected)}\n    got:      ${JSON.stringify(got)}`,
  );
}

function expect(what, expected, got) {
  if (expected !== got) fail(what, expected, got);
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

function wallClock(time) {
  return `${pad(time.year, 4)}-${pad(time.month)}-${pad(time.day)}T${pad(time.hour)}:${pad(time.minute)}:${pad(time.second)}`;
}

// An instant in `zone` as the platform's tz database (ICU, through Intl) reads it.
function intlWallClock(unixSeconds, zone) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(unixSeconds * 1000));
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}T${get("hour")}:${get("minute")}:${get("second")}`;
}

function one(component, name, where) {
  const props = component.getAllProperties(name);
  if (props.length > 1) fail(`${where}: ${name.toUpperCase()} appears once`, 1, props.length);
  return props[0] ?? null;
}

function textOf(component, name, where) {
  const prop = one(component, name, where);
  if (prop === null) return null;
  const values = prop.getValues();
  if (values.length !== 1) fail(`${where}: ${name.toUpperCase()} has one value`, 1, values.length);
  return String(values[0]);
}

function secondsOf(value) {
  if (value && typeof value.toSeconds === "function") return value.toSeconds();
  return ICAL.Duration.fromString(String(value)).toSeconds();
}

function checkCase(dir, testCase, sequences) {
  const where = `ical.js, ${testCase.name} (${testCase.file})`;
  const text = readFileSync(join(dir, testCase.file), "utf8");
  let vcal;
  try {
    vcal = new ICAL.Component(ICAL.parse(text));
  } catch (error) {
    fail(`${where}: parses`, "a calendar", String(error));
  }
  expect(`${where}: the top component`, "vcalendar", vcal.name);
  for (const [name, value] of Object.entries(testCase.calendar)) {
    expect(`${where}: ${name}`, value, textOf(vcal, name.toLowerCase(), where));
  }
  if (!textOf(vcal, "prodid", where)) fail(`${where}: PRODID`, "a PRODID", null);
  for (const [name, seconds] of Object.entries(testCase.durations)) {
    const prop = one(vcal, name.toLowerCase(), where);
    if (prop === null) fail(`${where}: ${name}`, "PT1H", null);
    expect(`${where}: ${name} in seconds`, seconds, secondsOf(prop.getFirstValue()));
  }
  // ical.js takes the VALUE parameter as the property's type.
  expect(`${where}: REFRESH-INTERVAL's VALUE`, "duration", one(vcal, "refresh-interval", where).type);

  const zones = vcal.getAllSubcomponents("vtimezone");
  expect(
    `${where}: one VTIMEZONE`,
    JSON.stringify([testCase.timezone]),
    JSON.stringify(zones.map((z) => z.getFirstPropertyValue("tzid"))),
  );
  const kinds = [...new Set(zones[0].getAllSubcomponents().map((c) => c.name))].sort();
  if (testCase.timezone === "America/New_York") {
    expect(`${where}: the VTIMEZONE has standard and daylight time`, "daylight,standard", kinds.join(","));
  }

  const events = vcal.getAllSubcomponents("vevent").map((c) => new ICAL.Event(c));
  const uids = events.map((e) => e.uid).sort();
  const wanted = testCase.events.map((e) => e.uid).sort();
  expect(`${where}: the events' UIDs`, JSON.stringify(wanted), JSON.stringify(uids));
  const byUid = new Map(events.map((e) => [e.uid, e]));
  for (const want of testCase.events) {
    const event = byUid.get(want.uid);
    const c = event.component;
    const what = `${where}, ${want.uid}`;
    expect(`${what}: SUMMARY`, want.summary, textOf(c, "summary", what));
    expect(`${what}: LOCATION`, want.location, textOf(c, "location", what));
    expect(`${what}: STATUS`, want.status, textOf(c, "status", what));
    expect(`${what}: URL`, want.url, textOf(c, "url", what));
    const description = textOf(c, "description", what);
    if ("description" in want) expect(`${what}: DESCRIPTION`, want.description, description);
    for (const part of want.description_contains ?? []) {
      if (description === null || !description.includes(part)) {
        fail(`${what}: DESCRIPTION contains`, part, description);
      }
    }
    for (const name of ["dtstamp", "last-modified"]) {
      const stamp = c.getFirstPropertyValue(name);
      if (!(stamp instanceof ICAL.Time) || stamp.zone !== ICAL.Timezone.utcTimezone || stamp.isDate) {
        fail(`${what}: ${name.toUpperCase()} in UTC`, "a UTC date-time", String(stamp));
      }
    }
    const sequence = c.getFirstPropertyValue("sequence");
    if (!Number.isInteger(sequence) || sequence < 0) fail(`${what}: SEQUENCE`, "an integer >= 0", sequence);
    sequences.set(`${testCase.name}\u0000${want.uid}`, sequence);
    for (const [name, time, utcKey, localKey] of [
      ["DTSTART", event.startDate, "start_utc", "start_local"],
      ["DTEND", event.endDate, "end_utc", "end_local"],
    ]) {
      if (!(time instanceof ICAL.Time) || time.isDate) fail(`${what}: ${name} is a date-time`, "date-time", String(time));
      expect(`${what}: ${name};TZID`, testCase.timezone, c.getFirstProperty(name.toLowerCase()).getParameter("tzid"));
      // The zone must be the feed's own VTIMEZONE (not floating time, not a registered zone).
      if (!(time.zone instanceof ICAL.Timezone) || time.zone.component !== zones[0]) {
        fail(`${what}: ${name} is in the feed's VTIMEZONE`, testCase.timezone, String(time.zone));
      }
      const utc = time.convertToZone(ICAL.Timezone.utcTimezone);
      expect(`${what}: ${name} as an instant (through the feed's VTIMEZONE)`, want[utcKey], `${wallClock(utc)}Z`);
      expect(
        `${what}: ${name}, that instant in the feed's VTIMEZONE`,
        want[localKey],
        wallClock(utc.convertToZone(time.zone)),
      );
      expect(
        `${what}: ${name}, that instant in ${testCase.timezone} (Intl tz database)`,
        want[localKey],
        intlWallClock(utc.toUnixTime(), testCase.timezone),
      );
    }
  }
}

function main(manifestPath) {
  if (!manifestPath) {
    console.error("usage: node ics-check.mjs DIR/manifest.json");
    return 2;
  }
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  const dir = dirname(manifestPath);
  const sequences = new Map();
  try {
    for (const testCase of manifest.cases) checkCase(dir, testCase, sequences);
    for (const rule of manifest.sequences) {
      const before = sequences.get(`${rule.before}\u0000${rule.uid}`);
      const after = sequences.get(`${rule.after}\u0000${rule.uid}`);
      const holds = rule.relation === "greater" ? after > before : after === before;
      if (!holds) {
        fail(
          `ical.js, SEQUENCE of ${rule.uid} after a ${rule.why}`,
          rule.relation === "greater" ? `greater than ${before}` : `the same (${before})`,
          after,
        );
      }
    }
  } catch (error) {
    if (error instanceof CheckFailure) {
      console.error(`FAIL ics-check.mjs: ${error.message}`);
      return 1;
    }
    throw error;
  }
  const version = JSON.parse(readFileSync(new URL("./node_modules/ical.js/package.json", import.meta.url), "utf8")).version;
  console.log(
    `ok   ical.js ${version} read ${manifest.cases.length} calendars and ${manifest.sequences.length} SEQUENCE changes as the manifest says`,
  );
  return 0;
}

process.exitCode = main(process.argv[2]);
