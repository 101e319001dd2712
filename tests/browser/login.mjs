// A real browser (Debian's Chromium, driven by playwright-core) logs in through the fake IdP's
// login, OTP and consent pages into the reference SP: the auto-submitting SAML forms, cookies
// and redirects work in a browser, not only in the harness's user agent.
// Usage: node login.mjs <SP base URL>
import { chromium } from "playwright-core";

const sp = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const fail = async (msg) => { console.error(`FAIL: ${msg}`); await browser.close(); process.exit(1); };
try {
  const page = await browser.newPage();
  // L2 user: password, then the OTP the page itself shows, then consent.
  await page.goto(`${sp}/login`);
  await page.fill("#login-form input[name=username]", "mario.rossi");
  await page.fill("#login-form input[name=password]", "password123");
  await page.click("#login-form button[value=login]");
  await page.waitForSelector("#otp-form");
  const otp = (await page.textContent("#otp-hint code")).trim();
  await page.fill("#otp-form input[name=otp]", otp);
  await page.click("#otp-form button[value=verify]");
  await page.waitForSelector("#consent-form");
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/acs")),
    page.click("#consent-form button[value=accept]"),
  ]);
  if (response.status() !== 200) await fail(`ACS answered ${response.status()}`);
  await page.waitForSelector("#outcome[data-outcome=accepted]");
  const level = (await page.textContent("#level")).trim();
  if (level !== "https://www.spid.gov.it/SpidL2") await fail(`level ${level}`);
  console.log(`accepted at ${level}`);

  // L1-only user: the IdP answers nr20 and the SP shows its error page with a 403.
  const page2 = await (await browser.newContext()).newPage();
  await page2.goto(`${sp}/login`);
  await page2.fill("#login-form input[name=username]", "anna.neri");
  await page2.fill("#login-form input[name=password]", "password123");
  const [refusal] = await Promise.all([
    page2.waitForResponse((r) => r.url().endsWith("/acs")),
    page2.click("#login-form button[value=login]"),
  ]);
  if (refusal.status() !== 403) await fail(`nr20 login answered ${refusal.status()}`);
  if (refusal.headers()["x-spid-rule"] !== "response.status.nr20") await fail(`rule ${refusal.headers()["x-spid-rule"]}`);
  await page2.waitForSelector("#spid-error[data-code='20']");
  console.log("refused with response.status.nr20, the user sees the nr20 message");
} catch (e) {
  await fail(e.message);
}
await browser.close();
