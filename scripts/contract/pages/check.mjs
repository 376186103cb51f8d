// The service's own pages in a real browser: Debian's Chromium driven by Playwright
// (playwright-core, which downloads no browser; `executablePath` names the system's).
//
//   node check.mjs BASE_URL SCREENSHOT_DIR
//
// Against `serve --demo`: "/" shows every 2019 round of the reference page in its format;
// following a round; adding it to the calendar (the .ics fetched and parsed with ical.js); a
// topic suggestion sent with JavaScript off; a form's errors; keyboard-only use; a phone's
// 390×844 viewport without sideways scrolling; the schedule printed on one page; axe-core
// (WCAG 2.0/2.1 A and AA) on every page, with 0 violations; nothing refused by the pages'
// Content-Security-Policy; a check-in from the QR code's address ($CHECKIN_URL) on a phone, sent
// twice with one nonce (one record, counted with $ORGANIZER_TOKEN), and remembered on the
// device; signing in through the identity provider (/me), a signed-in check-in, the year's
// certificate on one printed page, axe on the pages signed in, and signing out. Screenshots go
// to SCREENSHOT_DIR.
import { readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";
import ICAL from "ical.js";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const [base, shots = "screenshots"] = process.argv.slice(2);
if (!base) throw new Error("usage: node check.mjs BASE_URL [SCREENSHOT_DIR]");
mkdirSync(shots, { recursive: true });

const failures = [];
const check = (ok, what) => {
  if (ok) console.log(`ok: ${what}`);
  else {
    console.log(`FAILED: ${what}`);
    failures.push(what);
  }
};

// The reference page's ten rounds as the demo's "/" writes them (all past today).
const REFERENCE_LINES = [
  "Thursday, December 19, 2019, 12–1pm, @ BMC – MassMutual 5",
  "Thursday, November 21, 2019, 12–1pm, @ BMC – MassMutual 5",
  "Thursday, October 24, 2019, 12–1pm, @ BMC – MassMutual 5",
  "Thursday, September 26, 2019, 12–1pm, @ BMC – MassMutual 5",
  "Thursday, July 18, 2019, 12–1pm, @ BMC – MassMutual 6",
  "Thursday, June 20, 2019, 12–1pm, @ BMC – MassMutual 6: SWOT Analysis continued",
  "Thursday, May 23, 2019, 12–1pm, @ BMC – MassMutual 6: SWOT Analysis",
  "Thursday, April 25, 2019, 12–1pm, @ BMC – MassMutual 5: Tara Lagu, MD, MPH, on “How can we use patient comments to improve care?”",
  "Thursday, February 14, 2019, 12–1pm, @ BMC – MassMutual 6: Howard Goldberg, MD; Paul Visintainer, PhD; Sandeep Muddasani; Doug Salvador, MD, MPH; Peter Lindenauer, MD, MSc; Lauren Westafer, DO, MPH; Tara Lagu, MD, MPH; Quinn Pack, MD, MSc, on “The LHS at Baystate: mission, staff, and projects of Epi/Biostat, IHDPS, Analytics, and DHQ/Operations Excellence”",
  "Thursday, January 17, 2019, 12–1pm, @ 3601 Main St, PVLSI: Howard Goldberg, MD; Peter Lindenauer, MD, MSc; Doug Salvador, MD, MPH, on “What is the LHS and why is it important?”",
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});

const cspRefusals = [];
function watch(page) {
  page.on("console", (message) => {
    if (/content security policy/i.test(message.text())) cspRefusals.push(`${page.url()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => cspRefusals.push(`${page.url()}: ${error.message}`));
}

async function axe(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  for (const v of result.violations) {
    console.log(`  axe on ${name}: ${v.id} (${v.impact}): ${v.help}`);
    for (const node of v.nodes.slice(0, 5)) console.log(`    ${node.target.join(" ")}`);
  }
  check(result.violations.length === 0, `axe finds no WCAG 2.1 A/AA violation on ${name} (${result.passes.length} rules pass)`);
}

async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage });
}

try {
  // ---- a phone -------------------------------------------------------------------------------
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true });
  const page = await phone.newPage();
  watch(page);
  await page.goto(`${base}/`);
  const lines = (await page.locator("ul.rounds li a").allTextContents()).map((t) => t.trim());
  for (const expected of REFERENCE_LINES) check(lines.includes(expected), `"/" shows ${expected.slice(0, 60)}…`);
  const positions = REFERENCE_LINES.map((l) => lines.indexOf(l));
  check(positions.every((p, i) => i === 0 || p > positions[i - 1]), "the 2019 rounds are in their order (most recent first under Past)");
  check((await page.locator("h1").textContent()).trim() === "Learning Health System Rounds", "the series' name is the page's heading");
  check(await page.locator('a[href^="mailto:"]').count() >= 2, "the contacts have mail links");
  check(await page.locator('a[href^="webcal://"]').count() === 1, "a webcal:// subscribe link");
  check(await page.locator('a[href="/api/v1/rounds.ics"]').count() === 1, "an https link to the feed");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 390, `nothing scrolls sideways at 390×844 (${width}px wide)`);
  const fontSize = await page.evaluate(() => parseFloat(getComputedStyle(document.body).fontSize));
  check(fontSize >= 16, `the text is ${fontSize}px at 390×844, legible without zooming`);
  await shot(page, "home-390x844");
  await axe(page, "/ (390×844)");

  // Following a round, then adding it to the calendar.
  await page.locator("ul.rounds a", { hasText: "April 25, 2019" }).click();
  await page.waitForURL(/\/rounds\/\d+$/);
  check((await page.locator("h1").textContent()).includes("How can we use patient comments"), "following a round opens its page");
  check(await page.locator("text=Tara Lagu, MD, MPH").count() >= 1, "the round's page names its speaker with credentials");
  await shot(page, "round-390x844");
  await axe(page, page.url().replace(base, ""));
  const ics = await page.locator("a", { hasText: "Add to calendar" }).getAttribute("href");
  const response = await page.request.get(`${base}${ics}`);
  check(response.status() === 200 && response.headers()["content-type"].startsWith("text/calendar"), "the .ics is served");
  const calendar = new ICAL.Component(ICAL.parse(await response.text()));
  const event = calendar.getFirstSubcomponent("vevent");
  check(event && event.getFirstPropertyValue("summary").includes("patient comments"), "the .ics parses, with the round's title");
  const start = event.getFirstPropertyValue("dtstart");
  check(start.year === 2019 && start.month === 4 && start.day === 25, "the event starts on April 25, 2019");

  // The round with the demo's initiative: its run chart is on the page.
  await page.goto(`${base}/`);
  const swot = page.locator("ul.rounds a", { hasText: "May 23, 2019" });
  await swot.click();
  await page.waitForURL(/\/rounds\/\d+$/);
  await shot(page, "round-swot-390x844");
  await axe(page, page.url().replace(base, ""));

  // The embedded fragment, and the pages of a sent form.
  for (const path of ["/embed/upcoming", "/suggestions/sent", "/rounds/99999"]) {
    await page.goto(`${base}${path}`);
    await shot(page, path.replaceAll("/", "_").replace(/^_/, ""), true);
    await axe(page, path);
  }

  // ---- the check-in page, from the QR code's address, on a phone ------------------------------
  const checkinUrl = process.env.CHECKIN_URL;
  const organizer = process.env.ORGANIZER_TOKEN;
  check(Boolean(checkinUrl && organizer), "the check-in round's QR address and an organizer token are given");
  if (checkinUrl && organizer) {
    const roundId = new URL(checkinUrl).pathname.split("/")[2];
    const records = async () => {
      const r = await page.request.get(`${base}/api/v1/rounds/${roundId}/attendance`, { headers: { Authorization: `Bearer ${organizer}` } });
      return (await r.json()).total;
    };
    await page.goto(checkinUrl);
    check((await page.locator("h1").textContent()).trim() === "Check in", "the QR address opens the check-in page");
    const code = new URL(checkinUrl).searchParams.get("code");
    check((await page.inputValue("#code")) === code, "the code comes from the QR address");
    const cwidth = await page.evaluate(() => document.documentElement.scrollWidth);
    check(cwidth <= 390, `the check-in page does not scroll sideways at 390×844 (${cwidth}px wide)`);
    await page.fill("#full_name", "Pat Phone");
    await page.fill("#email", "pat.phone@example.org");
    await page.selectOption("#profession", "nurse");
    await shot(page, "checkin-390x844");
    await axe(page, "/checkin/{id} (390×844)");
    const sent = {
      nonce: await page.inputValue('input[name="nonce"]'),
      code,
      full_name: "Pat Phone",
      email: "pat.phone@example.org",
      profession: "nurse",
    };
    await Promise.all([page.waitForURL(/\/checkin\/\d+\/done/), page.getByRole("button", { name: "Check in" }).click()]);
    check((await page.locator("h1").textContent()).trim() === "You are checked in", "one tap checks in (303 to its result page)");
    await shot(page, "checkin-done-390x844");
    await axe(page, "the check-in's result page");
    // The same submit again, as a flaky connection resends it: the same nonce, the same record.
    const again = await page.request.post(`${base}/checkin/${roundId}`, {
      form: sent,
      headers: { Origin: base },
      maxRedirects: 0,
    });
    check(again.status() === 303 && /as=again/.test(again.headers()["location"] || ""), "the same submit again is answered 'already checked in'");
    check((await records()) === 1, "the same submit twice made one record");
    // The device remembers who checked in: the next visit needs one tap.
    await page.goto(checkinUrl);
    check((await page.inputValue("#full_name")) === "Pat Phone" && (await page.inputValue("#email")) === "pat.phone@example.org" && (await page.inputValue("#profession")) === "nurse", "name, e-mail and profession are remembered on the device");
    await Promise.all([page.waitForURL(/\/checkin\/\d+\/done/), page.getByRole("button", { name: "Check in" }).click()]);
    check((await page.locator("h1").textContent()).trim() === "You are already checked in", "checking in again says so");
    check((await records()) === 1, "still one record");
    const done = await page.content();
    check(!done.includes("pat.phone@example.org"), "the result page does not show the e-mail address");
  }

  // ---- signed in: the identity provider, /me, a check-in, the certificate ---------------------
  const account = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true });
  const mine = await account.newPage();
  watch(mine);
  // /me → /signin → the provider's authorization endpoint → /signin/callback → /me.
  await mine.goto(`${base}/me`);
  await mine.waitForURL(`${base}/me`);
  check((await mine.locator("h1").textContent()).trim() === "Your transcript", "/me signs in through the identity provider and comes back");
  // Every cookie of the context: a Secure cookie is not listed for an http:// address.
  const session = (await account.cookies()).find((c) => c.name === "lhs_session");
  check(Boolean(session && session.httpOnly && session.secure && session.sameSite === "Lax"), "the session cookie is Secure, HttpOnly and SameSite=Lax");
  check(!(await mine.evaluate(() => document.cookie)).includes("lhs_session"), "no script can read the session");
  await axe(mine, "/me (signed in, no attendance yet)");
  if (checkinUrl) {
    await mine.goto(checkinUrl);
    check(await mine.locator("text=Signed in as Dr. Pat Signed").count() === 1, "the check-in page knows who is signed in");
    check((await mine.inputValue("#email")) === "pat.signed@example.org", "the e-mail address comes from the sign-in");
    await mine.selectOption("#profession", "physician");
    await axe(mine, "/checkin/{id} (signed in)");
    await Promise.all([mine.waitForURL(/\/checkin\/\d+\/done/), mine.getByRole("button", { name: "Check in" }).click()]);
    check((await mine.locator("h1").textContent()).trim() === "You are checked in", "a signed-in person checks in with one tap");
  }
  for (const path of ["/", "/embed/upcoming"]) {
    await mine.goto(`${base}${path}`);
    await axe(mine, `${path} (signed in)`);
  }
  await mine.goto(`${base}/`);
  await Promise.all([mine.waitForURL(/\/rounds\/\d+$/), mine.locator("ul.rounds a", { hasText: "April 25, 2019" }).click()]);
  await axe(mine, "a round (signed in)");
  await mine.goto(`${base}/me`);
  check(await mine.locator("td", { hasText: "Check-in from the room" }).count() === 1, "/me lists the round checked in to");
  await shot(mine, "me-390x844");
  await axe(mine, "/me (signed in)");
  await Promise.all([mine.waitForURL(/\/me\/certificate\/\d{4}$/), mine.locator('a[href^="/me/certificate/"]').first().click()]);
  check((await mine.locator("h1").textContent()).trim() === "Certificate of attendance", "the year's certificate opens");
  await shot(mine, "certificate-390x844");
  await axe(mine, "/me/certificate/{year}");
  const certificate = await mine.pdf({ format: "Letter" });
  writeFileSync(`${shots}/certificate-print.pdf`, certificate);
  const certificatePages = (certificate.toString("latin1").match(/\/Type\s*\/Page[^s]/g) || []).length;
  check(certificatePages === 1, `the certificate prints on one page (${certificatePages})`);
  await mine.goto(`${base}/me`);
  await Promise.all([mine.waitForURL(`${base}/`), mine.getByRole("button", { name: "Sign out" }).click()]);
  check(!(await account.cookies()).some((c) => c.name === "lhs_session"), "signing out removes the session cookie");

  // ---- JavaScript off: a topic suggestion is an ordinary form --------------------------------
  const noScript = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 390, height: 844 } });
  const plain = await noScript.newPage();
  watch(plain);
  await plain.goto(`${base}/`);
  await plain.fill("#comment", "Reducing readmissions after heart failure");
  await plain.fill("#author_name", "A. Reader");
  await Promise.all([plain.waitForURL(`${base}/suggestions/sent`), plain.click("text=Send the suggestion")]);
  check((await plain.locator("h1").textContent()).trim() === "Thank you", "a topic suggestion is sent with JavaScript off (303 to its result page)");
  await shot(plain, "suggestion-sent-390x844");

  // A form with errors: each error beside its field, and axe on that page too.
  const errors = await phone.newPage();
  watch(errors);
  await errors.goto(`${base}/`);
  await errors.evaluate(() => { document.querySelector("form").noValidate = true; });
  await errors.fill("#comment", " ");
  await errors.fill("#author_email", "not an address");
  await errors.click("text=Send the suggestion");
  await errors.waitForLoadState();
  check(await errors.locator('#author_email[aria-describedby="author_email-error"]').count() === 1, "an error is tied to its field (aria-describedby)");
  await shot(errors, "suggestion-errors-390x844");
  await axe(errors, "the suggestion form with errors");

  // ---- a desktop, a keyboard, and print ---------------------------------------------------------
  const desk = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const wide = await desk.newPage();
  watch(wide);
  await wide.goto(`${base}/`);
  await wide.keyboard.press("Tab");
  check((await wide.evaluate(() => document.activeElement.textContent.trim())) === "Skip to the content", "the first Tab reaches the skip link");
  let reached = false;
  for (let i = 0; i < 200 && !reached; i++) {
    await wide.keyboard.press("Tab");
    reached = await wide.evaluate(() => document.activeElement.id === "comment");
  }
  check(reached, "the suggestion form is reached with the keyboard alone");
  await wide.keyboard.type("Keyboard-only suggestion");
  await wide.keyboard.press("Tab");
  await wide.keyboard.press("Tab");
  await wide.keyboard.press("Tab");
  await Promise.all([wide.waitForURL(`${base}/suggestions/sent`), wide.keyboard.press("Enter")]);
  check(true, "the suggestion is sent with the keyboard alone");
  await wide.goto(`${base}/`);
  await shot(wide, "home-1280");
  await axe(wide, "/ (1280×900)");
  await wide.emulateMedia({ media: "print" });
  await shot(wide, "home-print");
  const pdf = await wide.pdf({ format: "Letter" });
  writeFileSync(`${shots}/home-print.pdf`, pdf);
  const pages = (pdf.toString("latin1").match(/\/Type\s*\/Page[^s]/g) || []).length;
  check(pages === 1, `the schedule prints on one page (${pages})`);

  check(cspRefusals.length === 0, `nothing was refused by the pages' Content-Security-Policy ${cspRefusals.join("; ")}`);
} finally {
  await browser.close();
}

if (failures.length) {
  console.log(`\n${failures.length} check(s) failed`);
  process.exit(1);
}
console.log("\nevery page check passed");
