// With the official TypeScript SDK: starts a tool call, cancels it at its first progress report,
// and prints what happened. For Switchboard's tests.
// Usage: node ts_cancel.mjs URL TOKEN TOOL 'JSON_ARGS'
// Prints one JSON line: {cancelled, error}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, tool, args] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "switchboard-test-cancel", version: "1.0.0" });
await client.connect(transport);
const abort = new AbortController();
let error = null;
try {
  await client.callTool({ name: tool, arguments: JSON.parse(args) }, undefined, {
    signal: abort.signal,
    onprogress: () => abort.abort("the test cancels at the first progress report"),
    timeout: 60000,
  });
} catch (e) {
  error = String(e?.message ?? e);
}
// The SDK sends notifications/cancelled without waiting for it; a request made after it makes sure
// it has left before the client closes.
await client.listTools();
console.log(JSON.stringify({ cancelled: abort.signal.aborted, error }));
await client.close();
process.exit(0);
