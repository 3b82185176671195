// With the official TypeScript SDK v2 (`@modelcontextprotocol/client`, which negotiates
// 2026-07-28): opens a `subscriptions/listen` stream naming one resource and has the server
// announce updates with a tool. For Switchboard's tests (waits: see heard.mjs).
// Usage: node ts2_listen.mjs URL TOKEN UPDATE_TOOL WATCHED_URI OTHER_URI
// Prints one JSON line: {version, honored, heard: [uri, ...]}.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { heardLog } from "./heard.mjs";

const [url, token, tool, watched, other] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
const client = new Client({ name: "switchboard-test-listener", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
const log = heardLog();
const { heard, atLeast: heardAtLeast } = log;
client.setNotificationHandler("notifications/resources/updated", (notification) => log.record(notification.params.uri));
await client.connect(transport);
const subscription = await client.listen({ resourceSubscriptions: [watched] });
await client.callTool({ name: tool, arguments: { uri: watched } });
await heardAtLeast(1);
// The other resource is not named: its update would come before the next of the watched one.
await client.callTool({ name: tool, arguments: { uri: other } });
await client.callTool({ name: tool, arguments: { uri: watched } });
await heardAtLeast(2);
console.log(JSON.stringify({ version: client.getNegotiatedProtocolVersion?.() ?? null, honored: subscription.honoredFilter, heard }));
await subscription.close();
await client.close();
process.exit(0);
