// Reads the to-do calendars that scripts/contract/todo_check.py fetched from a live server with
// ical.js, the iCalendar parser of Thunderbird, and checks them against the same manifest as
// Python's `icalendar` does there:
//
//   node scripts/contract/ts/todo-check.mjs DIR/manifest.json
//
// Each VTODO's UID, SUMMARY (exactly as written), STATUS, URL, DUE (a date, not a date-time),
// COMPLETED (a UTC date-time, for done items only), the owner named in DESCRIPTION, and SEQUENCE
// growing with every change of the item.
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

function one(component, name, where) {
  const props = component.getAllProperties(name);
  if (props.length > 1) fail(`${where}: ${name.toUpperCase()} appears once`, 1, props.length);
  return props[0] ?? null;
}

function textOf(component, name, where) {
  const prop = one(component, name, where);
  return prop === null ? null : String(prop.getFirstValue());
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
  expect(`${where}: VERSION`, "2.0", textOf(vcal, "version", where));
  expect(`${where}: to-dos only`, 0, vcal.getAllSubcomponents("vevent").length);
  const todos = vcal.getAllSubcomponents("vtodo");
  const uids = todos.map((t) => textOf(t, "uid", where)).sort();
  const wanted = testCase.todos.map((t) => t.uid).sort();
  expect(`${where}: the to-dos' UIDs`, JSON.stringify(wanted), JSON.stringify(uids));
  for (const want of testCase.todos) {
    const todo = todos.find((t) => textOf(t, "uid", where) === want.uid);
    const what = `${where}, ${want.uid}`;
    expect(`${what}: SUMMARY`, want.summary, textOf(todo, "summary", what));
    expect(`${what}: STATUS`, want.status, textOf(todo, "status", what));
    expect(`${what}: URL`, want.url, textOf(todo, "url", what));
    const due = todo.getFirstPropertyValue("due");
    if (!(due instanceof ICAL.Time) || !due.isDate) fail(`${what}: DUE is a date`, "a date", String(due));
    expect(`${what}: DUE`, want.due, `${pad(due.year, 4)}-${pad(due.month)}-${pad(due.day)}`);
    const description = textOf(todo, "description", what) ?? "";
    if (!description.includes(`Owner: ${want.owner}`)) {
      fail(`${what}: DESCRIPTION names the owner`, want.owner, description);
    }
    const completed = todo.getFirstPropertyValue("completed");
    if (want.completed) {
      if (!(completed instanceof ICAL.Time) || completed.isDate || completed.zone !== ICAL.Timezone.utcTimezone) {
        fail(`${what}: COMPLETED in UTC`, "a UTC date-time", String(completed));
      }
    } else if (completed !== null) {
      fail(`${what}: no COMPLETED before it is done`, null, String(completed));
    }
    for (const name of ["dtstamp", "last-modified", "created"]) {
      const stamp = todo.getFirstPropertyValue(name);
      if (!(stamp instanceof ICAL.Time) || stamp.zone !== ICAL.Timezone.utcTimezone || stamp.isDate) {
        fail(`${what}: ${name.toUpperCase()} in UTC`, "a UTC date-time", String(stamp));
      }
    }
    const sequence = todo.getFirstPropertyValue("sequence");
    if (!Number.isInteger(sequence) || sequence < 0) fail(`${what}: SEQUENCE`, "an integer >= 0", sequence);
    sequences.set(`${testCase.name}\u0000${want.uid}`, sequence);
  }
}

function main(manifestPath) {
  if (!manifestPath) {
    console.error("usage: node todo-check.mjs DIR/manifest.json");
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
      if (!(after > before)) fail(`ical.js, SEQUENCE of ${rule.uid} after its ${rule.why}`, `greater than ${before}`, after);
    }
  } catch (error) {
    if (error instanceof CheckFailure) {
      console.error(`FAIL todo-check.mjs: ${error.message}`);
      return 1;
    }
    throw error;
  }
  const version = JSON.parse(readFileSync(new URL("./node_modules/ical.js/package.json", import.meta.url), "utf8")).version;
  console.log(
    `ok   ical.js ${version} read ${manifest.cases.length} to-do calendars and ${manifest.sequences.length} SEQUENCE changes as the manifest says`,
  );
  return 0;
}

process.exitCode = main(process.argv[2]);
