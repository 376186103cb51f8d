// Signs in at the API docs as a person would, in headless Chromium: /docs/ → Authorize → the
// `oidc` scheme's authorization code flow with PKCE → the provider's sign-in (oauth2-mock-server
// answers it at once) → back at /docs/oauth2-redirect.html → the code exchanged for a token →
// "Try it out" on GET /me, which must answer 200 for the provider's user. Nothing on the page may
// be refused under its Content-Security-Policy.
//
//   node scripts/contract/ts/docs-signin.mjs http://127.0.0.1:PORT CLIENT_ID
//
// Run by scripts/contract/docs-signin, which starts the provider and the server.
import puppeteer from "puppeteer-core";

const [base, clientId] = process.argv.slice(2);
const fail = (message) => {
  throw new Error(message);
};
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
});
const refused = [];
let status = 0;
try {
  const page = await browser.newPage();
  const watch = (target, name) => {
    target.on("console", (m) => {
      if (/content security policy/i.test(m.text())) refused.push(`${name}: ${m.text()}`);
    });
    target.on("pageerror", (e) => refused.push(`${name}: ${e.message}`));
  };
  watch(page, "/docs/");
  browser.on("targetcreated", async (target) => {
    const popup = await target.page();
    if (popup) watch(popup, "the sign-in window");
  });
  await page.goto(`${base}/docs/`, { waitUntil: "networkidle0" });
  // Record where the page sends the person to sign in.
  await page.evaluate(() => {
    const open = window.open.bind(window);
    window.__opened = [];
    window.open = (url, ...rest) => {
      window.__opened.push(String(url));
      return open(url, ...rest);
    };
  });
  await page.click("button.authorize");
  await page.waitForSelector(".modal-ux .auth-container");
  // Swagger UI reads the discovery document and shows one block per grant it lists.
  let clicked = "";
  for (let i = 0; i < 50 && !clicked.startsWith("clicked"); i += 1) {
    clicked = await page.evaluate(() => {
      const block = [...document.querySelectorAll(".modal-ux .auth-container")].find((b) =>
        /oidc \(OAuth2, authorization_code with PKCE\)/.test(b.innerText),
      );
      if (!block) return "no authorization-code block with PKCE";
      const button = [...block.querySelectorAll("button")].find((b) => b.innerText.trim() === "Authorize");
      if (!button) return "no Authorize button";
      button.click();
      return "clicked";
    });
    if (!clicked.startsWith("clicked")) await wait(100);
  }
  if (clicked !== "clicked") fail(`the sign-in dialog: ${clicked}`);
  // The provider redirects back at once; Swagger UI then exchanges the code.
  let signedIn = false;
  for (let i = 0; i < 100 && !signedIn; i += 1) {
    await wait(100);
    signedIn = await page.evaluate(() =>
      [...document.querySelectorAll(".modal-ux .auth-container")].some(
        (b) => /authorization_code with PKCE/.test(b.innerText) && /Logout/.test(b.innerText),
      ),
    );
  }
  const opened = await page.evaluate(() => window.__opened);
  if (opened.length !== 1) fail(`the sign-in window was opened ${opened.length} times`);
  const authorize = new URL(opened[0]);
  const query = authorize.searchParams;
  for (const [name, expected] of [
    ["response_type", "code"],
    ["client_id", clientId],
    ["code_challenge_method", "S256"],
    ["redirect_uri", `${base}/docs/oauth2-redirect.html`],
  ]) {
    if (query.get(name) !== expected) fail(`${name} is ${query.get(name)}, not ${expected}: ${authorize}`);
  }
  if (!/^[A-Za-z0-9_-]{43}$/.test(query.get("code_challenge") ?? "")) fail(`no S256 code_challenge: ${authorize}`);
  if (!(query.get("scope") ?? "").split(" ").includes("openid")) fail(`no openid scope: ${authorize}`);
  if (!signedIn) fail("the page did not show the person as signed in");
  await page.click(".modal-ux .close-modal");

  await page.click("#operations-me-me .opblock-summary");
  await page.waitForSelector("#operations-me-me .try-out__btn");
  await page.click("#operations-me-me .try-out__btn");
  await page.click("#operations-me-me .execute");
  const row = "#operations-me-me table.live-responses-table tbody";
  await page.waitForSelector(`${row} .response-col_status`, { timeout: 15000 });
  const code = (await page.$eval(`${row} .response-col_status`, (e) => e.innerText)).trim();
  const body = await page.$eval(`${row} .response-col_description`, (e) => e.innerText);
  if (code !== "200" || !body.includes('"sub": "johndoe"')) fail(`GET /me answered ${code}: ${body}`);
  if (refused.length > 0) fail(`refused or failed on the page:\n${refused.join("\n")}`);
  console.log(`docs-signin: signed in (authorization code + PKCE, S256) and GET /me answered ${code}`);
} catch (error) {
  console.error(`docs-signin: ${error.message}`);
  status = 1;
} finally {
  await browser.close();
}
process.exit(status);
