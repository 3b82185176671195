// With the official TypeScript SDK v2 (`@modelcontextprotocol/client`, which negotiates
// 2026-07-28): calls a tool that logs while it runs, and records the log messages it hears.
// For Switchboard's tests.
// Usage: node ts2_logging.mjs URL TOKEN TOOL
// Prints one JSON line: {version, logged: [data, ...], result}.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const [url, token, tool] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
const client = new Client({ name: "switchboard-test-logging", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
const logged = [];
client.setNotificationHandler("notifications/message", (notification) => logged.push(notification.params.data));
await client.connect(transport);
const result = await client.callTool({ name: tool, arguments: {} });
console.log(JSON.stringify({ version: client.getNegotiatedProtocolVersion?.() ?? null, logged, result }));
await client.close();
process.exit(0);
