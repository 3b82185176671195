"""A client written with the official Python `mcp` SDK's `Client`, which negotiates 2026-07-28 with
servers that offer it, for Switchboard's tests. It answers every elicitation by accepting with
{"ok": true}, so that multi-round-trip requests complete.

Usage: python python_modern.py URL TOKEN TOOL 'JSON_ARGS' PROMPT 'JSON_ARGS' RESOURCE_URI
(a RESOURCE_URI of `-` reads none)
Prints one JSON line: {protocolVersion, tool, prompt, resource}, or {…, "error": …} for the first
request that failed.
"""

import asyncio
import json
import sys

import httpx2 as httpx
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client


async def accept(context, params) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"ok": True})


async def main(url: str, token: str, tool: str, tool_args: str, prompt: str, prompt_args: str, uri: str) -> None:
    out: dict = {}
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode="auto", elicitation_callback=accept) as client:
            out["protocolVersion"] = client.session.protocol_version
            steps = [
                ("tool", lambda: client.call_tool(tool, json.loads(tool_args))),
                ("prompt", lambda: client.get_prompt(prompt, json.loads(prompt_args))),
                ("resource", lambda: client.read_resource(uri)),
            ]
            if uri == "-":
                steps.pop()
            for name, step in steps:
                try:
                    out[name] = (await step()).model_dump(mode="json", by_alias=True)
                except Exception as error:  # the test reads which step failed, and why
                    out["error"] = f"{name}: {type(error).__name__}: {error}"
                    break
    print(json.dumps(out))


asyncio.run(main(*sys.argv[1:8]))
