// With the official TypeScript SDK: calls a tool that adds a tool upstream, waits for
// notifications/tools/list_changed (calling again if the first was sent before the client's GET
// stream was open), and lists again. For Switchboard's tests.
// Usage: node ts_list_changed.mjs URL TOKEN TOOL 'JSON_ARGS' [sse]
// With `sse`, URL is a legacy HTTP+SSE endpoint. Prints one JSON line: {before, after, notified, errors}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [url, token, tool, args, kind] = process.argv.slice(2);
const options = { requestInit: { headers: { Authorization: `Bearer ${token}` } } };
const transport = kind === "sse"
  ? new SSEClientTransport(new URL(url), options)
  : new StreamableHTTPClientTransport(new URL(url), options);
const client = new Client({ name: "switchboard-test-list-changed", version: "1.0.0" });
let notify;
const notified = new Promise((resolve) => { notify = resolve; });
client.setNotificationHandler(ToolListChangedNotificationSchema, () => notify(true));
// What went wrong on the way (the GET stream refused or cut, say), for a failing test to show.
const errors = [];
client.onerror = (error) => errors.push(String(error));
await client.connect(transport);

const names = async () => {
  const all = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    all.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);
  return all;
};
const before = await names();
// The SDK opens its GET stream without waiting for it, and a change sent before that stream is
// open may be heard by no one (the specification asks no server to keep it, directly as through a
// gateway, and behind a load balancer the stream may open on another replica a moment later).
// So the change is made again, up to three times, until the client hears one.
let wasNotified = false;
let timer;
for (let attempt = 0; attempt < 3 && !wasNotified; attempt++) {
  await client.callTool({ name: tool, arguments: JSON.parse(args) });
  const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(false), 5000); });
  wasNotified = await Promise.race([notified, timeout]);
  clearTimeout(timer);
}
const after = await names();
console.log(JSON.stringify({ before, after, notified: wasNotified, errors }));
await client.close();
process.exit(0);
