// With the official TypeScript SDK v2 (`@modelcontextprotocol/client`, which negotiates
// 2026-07-28): listens for tool list changes on `subscriptions/listen`, calls a tool that
// changes the list, and lists the tools again once it has heard. For Switchboard's tests
// (waits: see heard.mjs).
// Usage: node ts2_list_changed.mjs URL TOKEN TOOL ARGUMENTS_JSON
// Prints one JSON line: {version, honored, heard, tools: [name, ...]}.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { heardLog } from "./heard.mjs";

const [url, token, tool, args] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
const client = new Client({ name: "switchboard-test-list-changes", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
const log = heardLog();
client.setNotificationHandler("notifications/tools/list_changed", () => log.record("tools"));
await client.connect(transport);
const subscription = await client.listen({ toolsListChanged: true });
await client.callTool({ name: tool, arguments: JSON.parse(args) });
await log.atLeast(1);
const { tools } = await client.listTools();
console.log(JSON.stringify({ version: client.getNegotiatedProtocolVersion?.() ?? null, honored: subscription.honoredFilter, heard: log.heard, tools: tools.map((t) => t.name) }));
await subscription.close();
await client.close();
process.exit(0);
