// Headless Chromium (playwright-core, Debian's /usr/bin/chromium) clicking through Switchboard's
// web console as people do, for Switchboard's tests. Every page is saved at desktop and phone
// width; a browser console error or a failed request fails the run.
//
// Usage: node console.mjs CONFIG_JSON
// CONFIG: {
//   base: URL,                     the gateway
//   user: {username, password},    a user with no access yet
//   admin: {username, password},   an admin
//   app: ALIAS,                    the app the user asks for
//   permission: LABEL,             the permission the user asks for
//   screenshots: DIR,
//   catalog: LABEL,                the catalog entry the admin adds, as the list shows it
//   block: {mcpServers: {...}},    the block the admin pastes
//   callServer: NAME,              the server whose tool the admin tries,
//   call: {tool, arguments},       and the call
//   run: {task, model, baseUrl, server}   the run the admin starts, on the scripted LLM
// }
// Prints one JSON line: {requested, approvedSeen, auditRowsBefore, auditRowsAfter, auditWho, grant,
// catalogAdded, imported, called, runAnswer, runCall, runsListed, overviewCalls, overviewChart,
// overviewBars, connect, keyShown, keyRevoked,
// problems: [...]}.
import path from "node:path";
import { chromium } from "playwright-core";

const config = JSON.parse(process.argv[2]);
const out = { problems: [] };
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });

// A signed-in browser of its own: cookies are not shared between the user and the admin.
async function signedIn(who) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") out.problems.push(`console (${who}): ${message.text()}`);
  });
  page.on("pageerror", (error) => out.problems.push(`page error (${who}): ${error.message}`));
  page.on("requestfailed", (request) => out.problems.push(`request failed (${who}): ${request.url()}`));
  page.on("response", (response) => {
    if (response.status() >= 500) out.problems.push(`HTTP ${response.status()} (${who}): ${response.url()}`);
  });
  await page.goto(`${config.base}/console`);
  await page.getByLabel("Username").fill(config[who].username);
  await page.getByLabel("Password").fill(config[who].password);
  await Promise.all([page.waitForURL(/\/console\//), page.getByRole("button", { name: "Sign in" }).click()]);
  return page;
}

// Saves the page at desktop width, then at a phone's.
async function shoot(page, name) {
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.screenshot({ path: path.join(config.screenshots, `console-${name}-desktop.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(config.screenshots, `console-${name}-phone.png`), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 860 });
}

try {
  // The user finds the app, and asks for the permission with a reason.
  const user = await signedIn("user");
  await shoot(user, "apps");
  await user.getByLabel("Search apps").fill(config.app);
  await user.getByRole("button", { name: "Search" }).click();
  await user.getByRole("link", { name: "Permissions" }).first().click();
  await user.waitForURL(new RegExp(`/console/apps/${config.app}`));
  await shoot(user, "app");
  const permission = user.locator("li.panel", { has: user.getByRole("heading", { name: config.permission, exact: true }) });
  await permission.getByLabel("Why do you need it?").fill("I prepare the all-hands sales report");
  await permission.getByLabel("For how long").selectOption({ label: "1 day" });
  await permission.getByRole("button", { name: "Request access" }).click();
  await user.waitForURL(/done=requested/);
  out.requested = (await permission.locator(".pill").innerText()).trim();
  await shoot(user, "app-requested");
  await user.getByRole("link", { name: "My access" }).click();
  await shoot(user, "access-pending");

  // The admin approves it from the inbox.
  const admin = await signedIn("admin");
  await admin.getByRole("link", { name: /Requests/ }).click();
  await admin.waitForURL(/\/console\/admin\/requests/);
  await shoot(admin, "requests");
  const request = admin.locator("li.panel").filter({ hasText: config.user.username }).first();
  await request.getByRole("button", { name: "Approve" }).click();
  await admin.waitForURL(/done=approved/);
  out.approvedSeen = await admin.getByRole("status").innerText();
  await shoot(admin, "requests-decided");

  // The admin narrows the audit log to the user's rows.
  await admin.getByRole("link", { name: "Audit" }).click();
  await admin.waitForURL(/\/console\/admin\/audit/);
  out.auditRowsBefore = await admin.locator("table.audit tbody tr").count();
  await shoot(admin, "audit");
  await admin.getByLabel("User").fill(config.user.username);
  await admin.getByRole("button", { name: "Filter" }).click();
  await admin.waitForURL(/user=/);
  out.auditRowsAfter = await admin.locator("table.audit tbody tr").count();
  out.auditWho = [...new Set(await admin.locator('table.audit tbody td[data-label="Who"]').allInnerTexts())];
  await shoot(admin, "audit-filtered");
  await admin.getByRole("link", { name: "Servers" }).click();
  await admin.waitForURL(/\/console\/admin\/servers/);
  await shoot(admin, "servers");

  // The admin adds a server from the catalog, then imports a pasted mcpServers block.
  await admin.getByLabel("Server", { exact: true }).selectOption({ label: config.catalog });
  await admin.getByRole("button", { name: "Add from the catalog" }).click();
  await admin.waitForURL(/done=server_added/);
  out.catalogAdded = await admin.locator("table tbody").innerText();
  await admin.getByLabel("JSON").fill(JSON.stringify(config.block));
  await admin.getByRole("button", { name: "Import" }).click();
  out.imported = await admin.locator("section", { has: admin.getByRole("heading", { name: "Imported" }) }).innerText();
  await shoot(admin, "servers-imported");
  // Deleting asks first; the admin keeps it.
  await admin.getByRole("link", { name: "Delete Local Notes" }).click();
  await admin.waitForURL(/\/delete$/);
  await shoot(admin, "delete");
  await admin.getByRole("link", { name: "Keep it" }).click();
  await admin.waitForURL(/\/console\/admin\/servers$/);

  // The admin test-calls one of the app's tools.
  await admin.getByRole("link", { name: config.callServer, exact: true }).click();
  await admin.waitForURL(/\/console\/admin\/servers\/[^/]+$/);
  const tool = admin.locator("li.panel", { has: admin.getByRole("heading", { name: config.call.tool, exact: true }) });
  await tool.getByText("Try it").click();
  await tool.getByLabel("Arguments (JSON)").fill(JSON.stringify(config.call.arguments));
  await tool.getByRole("button", { name: `Call ${config.call.tool}` }).click();
  out.called = await admin.locator("section", { has: admin.getByRole("heading", { name: /Result of/ }) }).locator("pre").innerText();
  await shoot(admin, "server-called");
  await admin.getByRole("link", { name: "People" }).click();
  await admin.waitForURL(/\/console\/admin\/people/);
  await shoot(admin, "people");

  // The admin starts a run with the app's tools and reads it, step by step.
  await admin.getByRole("link", { name: "Runs" }).click();
  await admin.waitForURL(/\/console\/admin\/runs$/);
  await shoot(admin, "runs-empty");
  await admin.getByLabel("Task").fill(config.run.task);
  await admin.getByLabel("Model").fill(config.run.model);
  await admin.getByLabel("LLM endpoint (optional)").fill(config.run.baseUrl);
  await admin.locator(`input[name="server"][value="${config.run.server}"]`).check();
  await admin.getByRole("button", { name: "Start the run" }).click();
  await admin.waitForURL(/\/console\/admin\/runs\/run_/);
  // A run still going shows a page that looks again by itself until the run is kept.
  await admin.getByRole("heading", { name: "Answer" }).waitFor();
  out.runAnswer = await admin.locator(".answer").innerText();
  await admin.getByText("Arguments and output").first().click();
  out.runCall = await admin.locator(".call").first().innerText();
  await shoot(admin, "run");
  await admin.getByRole("link", { name: "Runs", exact: true }).first().click();
  await admin.waitForURL(/\/console\/admin\/runs$/);
  out.runsListed = await admin.locator("table tbody").innerText();
  await shoot(admin, "runs");

  // The overview shows the app's calls of the last hour: the test call and the run's.
  await admin.getByRole("link", { name: "Overview" }).click();
  await admin.waitForURL(/\/console\/admin$/);
  const health = admin.locator("ul.health > li", { has: admin.getByRole("link", { name: config.callServer, exact: true }) });
  out.overviewCalls = await health.locator("dd").first().innerText();
  out.overviewChart = await health.getByRole("img").getAttribute("aria-label");
  out.overviewBars = await health.locator("svg rect.calls").count();
  await shoot(admin, "overview");

  // The user sees the grant, and how to connect.
  await user.goto(`${config.base}/console/access`);
  out.grant = await user.locator("section", { has: user.getByRole("heading", { name: "Access you hold" }) }).locator("tbody").innerText();
  await user.getByRole("link", { name: "Connect" }).click();
  await shoot(user, "connect");
  out.connect = await user.locator("pre").first().innerText();

  // The user makes an API key (shown once), then revokes it.
  await user.getByRole("link", { name: "My access" }).click();
  await user.getByLabel("Name").fill("nightly CI");
  await user.getByRole("button", { name: "Create key" }).click();
  out.keyShown = await user.locator("section.secret pre").innerText();
  await shoot(user, "access-key");
  await user.getByRole("button", { name: "Revoke the key nightly CI" }).click();
  await user.waitForURL(/done=key_revoked/);
  out.keyRevoked = await user.locator("tr", { hasText: "nightly CI" }).innerText();
  await shoot(user, "access-revoked");
} catch (error) {
  out.error = String(error?.stack ?? error);
}
await browser.close();
console.log(JSON.stringify(out));
