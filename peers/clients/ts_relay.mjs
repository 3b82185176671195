// With the official TypeScript SDK: a client that can answer sampling, elicitation and roots
// requests calls one tool, answering whatever the server asks. For Switchboard's tests.
// Usage: node ts_relay.mjs URL TOKEN TARGET 'JSON_ARGS'
// TARGET is a tool name, `prompt:NAME` (gets that prompt with the arguments) or `resource:URI`
// (reads that resource; the arguments are ignored).
// Prints one JSON line: {tools, result, error, asked}; `error` is set when the request failed.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";

const [url, token, tool, args] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client(
  { name: "switchboard-test-relay", version: "1.0.0" },
  { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } },
);
const asked = [];
client.setRequestHandler(CreateMessageRequestSchema, async () => {
  asked.push("sampling/createMessage");
  return {
    role: "assistant",
    content: { type: "text", text: "relayed sampling answer" },
    model: "test-model",
    stopReason: "endTurn",
  };
});
client.setRequestHandler(ListRootsRequestSchema, async () => {
  asked.push("roots/list");
  return { roots: [{ uri: "file:///srv/relayed-root", name: "relayed-root" }] };
});
client.setRequestHandler(ElicitRequestSchema, async () => {
  asked.push("elicitation/create");
  return { action: "decline" };
});
await client.connect(transport);
const tools = (await client.listTools()).tools.map((t) => t.name);
const options = { timeout: 60000 };
let result;
let error;
try {
  if (tool.startsWith("prompt:")) {
    result = await client.getPrompt({ name: tool.slice(7), arguments: JSON.parse(args) }, options);
  } else if (tool.startsWith("resource:")) {
    result = await client.readResource({ uri: tool.slice(9) }, options);
  } else {
    result = await client.callTool({ name: tool, arguments: JSON.parse(args) }, undefined, options);
  }
} catch (failure) {
  // The test compares the error with the one the server gives directly.
  error = { code: failure.code, message: failure.message };
}
console.log(JSON.stringify({ tools, result, error, asked }));
await client.close();
process.exit(0);
