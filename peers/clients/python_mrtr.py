"""A 2026-07-28 client written with the official Python `mcp` SDK, for Switchboard's tests: it
calls one tool, answers every elicitation by accepting with {"ok": true} and every sampling
request with the text "Paris", so a server's `input_required` answers (multi-round-trip
requests) are fulfilled and retried by the SDK.

Usage: python python_mrtr.py URL TOKEN TOOL 'JSON_ARGS'
Prints one JSON line: {protocolVersion, elicited, sampled, result}.
"""

import asyncio
import json
import sys

import httpx2 as httpx
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client

ELICITED: list[str] = []
SAMPLED: list[str] = []


async def accept(context, params) -> types.ElicitResult:
    ELICITED.append(params.message)
    return types.ElicitResult(action="accept", content={"ok": True})


async def sample(context, params) -> types.CreateMessageResult:
    SAMPLED.append(params.messages[0].content.text)
    return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="Paris"), model="test")


async def main(url: str, token: str, tool: str, args: str) -> None:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(
            transport, mode="2026-07-28", elicitation_callback=accept, sampling_callback=sample
        ) as client:
            result = await client.call_tool(tool, json.loads(args))
            print(
                json.dumps(
                    {
                        "protocolVersion": client.session.protocol_version,
                        "elicited": ELICITED,
                        "sampled": SAMPLED,
                        "result": result.model_dump(mode="json", by_alias=True),
                    }
                )
            )


asyncio.run(main(*sys.argv[1:5]))
