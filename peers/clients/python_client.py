"""A client written with the official Python `mcp` SDK, for Switchboard's tests.

Usage: python python_client.py URL TOKEN TOOL 'JSON_ARGS'
A URL ending in /sse is spoken to over the legacy HTTP+SSE transport, any other over Streamable HTTP.
Prints one JSON line: {tools, result}.
"""

import asyncio
import json
import sys

import httpx2 as httpx
from mcp import ClientSession, types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client


async def use(read, write, tool: str, args: str) -> None:
    async with ClientSession(read, write) as session:
        await session.initialize()
        tools = []
        cursor = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools.extend(t.name for t in page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        result = await session.call_tool(tool, json.loads(args))
        print(json.dumps({"tools": tools, "result": result.model_dump(mode="json", by_alias=True)}))


async def main(url: str, token: str, tool: str, args: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    if url.endswith("/sse"):
        async with sse_client(url, headers=headers) as (read, write):
            await use(read, write, tool, args)
        return
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            await use(streams[0], streams[1], tool, args)


asyncio.run(main(*sys.argv[1:5]))
