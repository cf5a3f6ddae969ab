"""The official MCP Python SDK client through agentry's gateway, with a
fixed bearer credential (an access token or an agk_ API key).

usage: client_gateway.py MCP_URL CREDENTIAL STEP...
The session opens with `server/discover` (protocol 2026-07-28: every POST
carries Mcp-Method, and Mcp-Name for named calls); with MCP_ERA=legacy in
the environment, with `initialize` (no such headers).
Steps: tools | call:<tool>:<json args> | slow:<steps> | resources |
read:<uri> | prompts | prompt:<name>:<json args> | wait:<file> (wait
until the file exists, for a test to act mid-session)
Prints one JSON object: {"steps": [result per step], "ended_at": [unix
time each step ended]}; a refused step's result is {"error": message,
"code": code}.
"""
import asyncio
import json
import os
import sys
import time

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

url, credential, steps = sys.argv[1], sys.argv[2], sys.argv[3:]


def err(e):
    code = getattr(getattr(e, "error", None), "code", None)
    return {"error": str(e), "code": code, "type": type(e).__name__}


async def step(session, s):
    kind, _, rest = s.partition(":")
    if kind == "tools":
        return sorted(t.name for t in (await session.list_tools()).tools)
    if kind == "call":
        name, _, args = rest.partition(":")
        r = await session.call_tool(name, json.loads(args or "{}"))
        return {"is_error": r.is_error, "text": [c.text for c in r.content if hasattr(c, "text")]}
    if kind == "slow":
        progress = []

        async def on_progress(p, total, message):
            progress.append(p)

        r = await session.call_tool("slow", {"steps": int(rest)}, progress_callback=on_progress)
        return {"text": [c.text for c in r.content], "progress": progress}
    if kind == "resources":
        return sorted(str(r.uri) for r in (await session.list_resources()).resources)
    if kind == "read":
        r = await session.read_resource(rest)
        return [c.text for c in r.contents]
    if kind == "prompts":
        return sorted(p.name for p in (await session.list_prompts()).prompts)
    if kind == "prompt":
        name, _, args = rest.partition(":")
        r = await session.get_prompt(name, json.loads(args or "{}"))
        return [m.content.text for m in r.messages]
    if kind == "wait":
        while not os.path.exists(rest):
            await asyncio.sleep(0.05)
        return "ok"
    raise SystemExit(f"unknown step {s}")


async def main():
    results, ended_at = [], []
    headers = {"Authorization": f"Bearer {credential}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, *rest):
            async with ClientSession(read, write) as session:
                if os.environ.get("MCP_ERA") == "legacy":
                    await session.initialize()
                else:
                    await session.discover()
                for s in steps:
                    try:
                        results.append(await asyncio.wait_for(step(session, s), 30))
                    except Exception as e:  # a refusal is a result here
                        results.append(err(e))
                    ended_at.append(time.time())
    print(json.dumps({"steps": results, "ended_at": ended_at}))


asyncio.run(main())
