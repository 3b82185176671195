// With the official TypeScript SDK: calls a tool that adds a tool upstream, waits for
// notifications/tools/list_changed, and lists again. For Switchboard's tests.
// Usage: node ts_list_changed.mjs URL TOKEN TOOL 'JSON_ARGS' [sse]
// With `sse`, URL is a legacy HTTP+SSE endpoint. Prints one JSON line: {before, after, notified}.
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
await client.callTool({ name: tool, arguments: JSON.parse(args) });
const timeout = new Promise((resolve) => setTimeout(() => resolve(false), 10000));
const wasNotified = await Promise.race([notified, timeout]);
const after = await names();
console.log(JSON.stringify({ before, after, notified: wasNotified }));
await client.close();
// The pending timeout would keep the process alive.
process.exit(0);
