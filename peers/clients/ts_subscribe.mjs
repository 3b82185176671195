// With the official TypeScript SDK (a 2025-era client): two sessions, A and B, subscribe to a
// resource at different times and have the server announce updates with a tool. For
// Switchboard's tests (waits: see heard.mjs).
// Usage: node ts_subscribe.mjs URL TOKEN UPDATE_TOOL WATCHED_URI OTHER_URI [sse]
// With `sse`, URL is a legacy HTTP+SSE endpoint.
// Prints one JSON line: {a: [uri, ...], b: [uri, ...]}, the updates each session heard, in order.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { heardLog } from "./heard.mjs";

const [url, token, tool, watched, other, kind] = process.argv.slice(2);

async function session(name) {
  const options = { requestInit: { headers: { Authorization: `Bearer ${token}` } } };
  const transport = kind === "sse" ? new SSEClientTransport(new URL(url), options) : new StreamableHTTPClientTransport(new URL(url), options);
  const client = new Client({ name, version: "1.0.0" });
  const log = heardLog();
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => log.record(notification.params.uri));
  await client.connect(transport);
  const update = (uri) => client.callTool({ name: tool, arguments: { uri } });
  return { client, heard: log.heard, heardAtLeast: log.atLeast, update };
}

const a = await session("switchboard-test-subscriber-a");
const b = await session("switchboard-test-subscriber-b");
// A alone is subscribed.
await a.client.subscribeResource({ uri: watched });
await a.update(watched);
await a.heardAtLeast(1);
// Both are: B's first update is this one, so an update of A's alone would have come before it.
await b.client.subscribeResource({ uri: watched });
await b.update(watched);
await b.heardAtLeast(1);
await a.heardAtLeast(2);
// A lets go: its next update is of the other resource, and one of the watched would come first.
await a.client.unsubscribeResource({ uri: watched });
await b.update(watched);
await b.heardAtLeast(2);
await a.client.subscribeResource({ uri: other });
await a.update(other);
await a.heardAtLeast(3);
console.log(JSON.stringify({ a: a.heard, b: b.heard }));
await a.client.close();
await b.client.close();
process.exit(0);
