// With the official TypeScript SDK v2 (`@modelcontextprotocol/client`) and its OAuth client
// provider, connects to MCP endpoints that require sign-in; headless Chromium (playwright-core,
// Debian's /usr/bin/chromium) plays the user: it signs in and approves or denies the consent
// screen. For Switchboard's tests.
//
// Usage: node ts2_oauth.mjs CONFIG_JSON
// CONFIG: {
//   username, password,            the user the browser signs in as
//   screenshots: DIR,              where the pages are saved as PNG files
//   tls: {cert, key},              PEM files for the metadata document's https server
//   oidc: {host, login},           sign in at this OpenID Connect provider (host:port) as `login`
//                                  instead of with a password
//   flows: [{
//     url,                         the MCP endpoint
//     client: "metadata" | "registered",
//     call: {name, arguments},     a tool to call once connected (optional)
//     shot: NAME,                  a prefix for this flow's screenshots (optional)
//   }]
// }
// A flow starts without tokens; the client's identity (its metadata document, or its
// registration) and the browser's session carry over from flow to flow.
// Prints one JSON line: {flows: [{pages: ["login"|"consent", ...], scope, tools, result, error}]}.
import http from "node:http";
import https from "node:https";
import fs from "node:fs";
import path from "node:path";
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from "@modelcontextprotocol/client";
import { chromium } from "playwright-core";

const config = JSON.parse(process.argv[2]);

// The callback the browser is sent back to.
let waiting = null;
const callback = http.createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  res.writeHead(200, { "content-type": "text/html" });
  res.end("<!doctype html><title>Done</title><p>Signed in. You can close this window.</p>");
  if (url.pathname === "/callback" && waiting) {
    waiting(url.searchParams);
    waiting = null;
  }
});
await new Promise((resolve) => callback.listen(0, "127.0.0.1", resolve));
const redirectUrl = `http://127.0.0.1:${callback.address().port}/callback`;

// The metadata document, served over https like a real client's; it lists a port-less loopback
// redirect, as Claude Code's does, and the client then uses a port of its own.
let metadataUrl = null;
if (config.tls) {
  const tls = { cert: fs.readFileSync(config.tls.cert), key: fs.readFileSync(config.tls.key) };
  const documents = https.createServer(tls, (req, res) => {
    res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=60" });
    res.end(JSON.stringify({
      client_id: metadataUrl,
      client_name: "Switchboard test client (metadata document)",
      redirect_uris: ["http://127.0.0.1/callback"],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    }));
  });
  await new Promise((resolve) => documents.listen(0, "127.0.0.1", resolve));
  metadataUrl = `https://127.0.0.1:${documents.address().port}/oauth/client.json`;
}

// What the SDK saves of each kind of client identity, kept across flows.
const identities = { metadata: undefined, registered: undefined };

function provider(kind) {
  const memo = { tokens: undefined, verifier: undefined, authorizationUrl: undefined };
  return {
    memo,
    get redirectUrl() { return redirectUrl; },
    clientMetadataUrl: kind === "metadata" ? metadataUrl : undefined,
    get clientMetadata() {
      return {
        client_name: "Switchboard test client (registered)",
        redirect_uris: [redirectUrl],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        token_endpoint_auth_method: "none",
      };
    },
    clientInformation() { return identities[kind]; },
    saveClientInformation(information) { identities[kind] = information; },
    tokens() { return memo.tokens; },
    saveTokens(tokens) { memo.tokens = tokens; },
    redirectToAuthorization(url) { memo.authorizationUrl = url; },
    saveCodeVerifier(verifier) { memo.verifier = verifier; },
    codeVerifier() { return memo.verifier; },
  };
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const context = await browser.newContext({ viewport: { width: 900, height: 760 } });
const page = await context.newPage();

async function shoot(name) {
  if (config.screenshots) {
    await page.screenshot({ path: path.join(config.screenshots, `${name}.png`), fullPage: true });
  }
}

// Plays the user from the authorization URL until the browser reaches the callback.
async function authorize(url, pages, shot) {
  const arrived = new Promise((resolve) => { waiting = resolve; });
  await page.goto(url.toString());
  for (let step = 0; step < 8; step++) {
    const where = new URL(page.url());
    if (where.pathname === "/callback") break;
    if (config.oidc && where.host === config.oidc.host) {
      if (await page.locator("input[name=login]").count()) {
        pages.push("provider-login");
        await page.fill("input[name=login]", config.oidc.login);
        await page.fill("input[name=password]", "any password");
        await shoot(`${shot}-provider-login`);
      } else {
        pages.push("provider-consent");
      }
      const before = page.url();
      await page.click("button[type=submit]");
      await page.waitForURL((u) => u.toString() !== before, { timeout: 15000 });
      continue;
    }
    if (where.pathname === "/login" && config.oidc) {
      pages.push("login");
      await shoot(`${shot}-login`);
      await page.click("a.button");
      await page.waitForURL((u) => u.host === config.oidc.host, { timeout: 15000 });
      continue;
    }
    if (where.pathname === "/login") {
      pages.push("login");
      await page.fill("#username", config.username);
      await page.fill("#password", config.password);
      await shoot(`${shot}-login`);
      await Promise.all([page.waitForLoadState("load"), page.click("button.primary")]);
      await page.waitForURL((u) => u.pathname !== "/login", { timeout: 15000 });
      continue;
    }
    if (await page.locator("button[value=approve]").count()) {
      pages.push("consent");
      await shoot(`${shot}-consent`);
      await page.click("button[value=approve]");
      await page.waitForURL((u) => u.pathname === "/callback", { timeout: 15000 });
      continue;
    }
    throw new Error(`the browser is stuck at ${page.url()}: ${await page.locator("main").innerText()}`);
  }
  return await arrived;
}

// Runs `attempt` (which needs a connected client), authorizing in the browser whenever the
// transport asks for it.
async function withSignIn(auth, pages, shot, attempt) {
  for (let round = 0; round < 3; round++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof UnauthorizedError) && !auth.memo.authorizationUrl) throw error;
      const url = auth.memo.authorizationUrl;
      if (!url) throw error;
      auth.memo.authorizationUrl = undefined;
      const params = await authorize(url, pages, shot);
      if (params.get("error")) throw new Error(`authorization failed: ${params.get("error")}`);
      await auth.transport.finishAuth(params);
    }
  }
  throw new Error("still unauthorized after three sign-ins");
}

const results = [];
for (const [index, flow] of config.flows.entries()) {
  const shot = flow.shot ?? `flow${index + 1}`;
  const auth = provider(flow.client);
  const pages = [];
  const outcome = { pages };
  let client;
  try {
    const connect = async () => {
      auth.transport = new StreamableHTTPClientTransport(new URL(flow.url), { authProvider: auth });
      client = new Client({ name: "switchboard-test-oauth", version: "1.0.0" });
      await client.connect(auth.transport);
    };
    await withSignIn(auth, pages, shot, connect);
    outcome.tools = (await client.listTools()).tools.map((tool) => tool.name);
    if (flow.call) {
      const call = async () => {
        try {
          return await client.callTool(flow.call);
        } catch (error) {
          if (auth.memo.authorizationUrl) {
            // Stepping up: the transport asked for a wider token; reconnect after it.
            const url = auth.memo.authorizationUrl;
            auth.memo.authorizationUrl = undefined;
            const params = await authorize(url, pages, shot);
            await auth.transport.finishAuth(params);
            await client.close().catch(() => {});
            await connect();
            return await client.callTool(flow.call);
          }
          throw error;
        }
      };
      outcome.result = await call();
    }
    outcome.scope = auth.memo.tokens?.scope ?? null;
    outcome.accessToken = auth.memo.tokens?.access_token ?? null;
    outcome.refreshToken = auth.memo.tokens?.refresh_token ?? null;
  } catch (error) {
    outcome.error = String(error?.stack ?? error);
  }
  await client?.close().catch(() => {});
  results.push(outcome);
}

if (config.accountPage) {
  await page.goto(config.accountPage);
  await shoot("authorized-clients");
}

console.log(JSON.stringify({ flows: results, clientId: identities.registered?.client_id ?? null, metadataUrl }));
await browser.close();
callback.close();
process.exit(0);
