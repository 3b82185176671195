// A client written with the official TypeScript SDK, for Switchboard's tests.
// Usage: node ts_client.mjs URL TOKEN TOOL 'JSON_ARGS'
// Prints one JSON line: {protocolVersion, tools, result, progress}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, tool, args] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "switchboard-test-ts-client", version: "1.0.0" });
await client.connect(transport);

const tools = [];
let cursor;
do {
  const page = await client.listTools(cursor ? { cursor } : {});
  tools.push(...page.tools.map((t) => t.name));
  cursor = page.nextCursor;
} while (cursor);

let progress = 0;
const result = await client.callTool(
  { name: tool, arguments: JSON.parse(args ?? "{}") },
  undefined,
  { onprogress: () => { progress += 1; }, timeout: 60000 },
);
console.log(JSON.stringify({ protocolVersion: transport.protocolVersion ?? null, tools, result, progress }));
await client.close();
