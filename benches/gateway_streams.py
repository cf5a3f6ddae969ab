"""Opens N MCP sessions through agentry's gateway, holds each one's GET
event stream open, and prints agentry's resident memory with them open and
before, as bytes per stream.

usage: gateway_streams.py MCP_URL CREDENTIAL N AGENTRY_PID
"""
import asyncio
import sys

import httpx2

url, credential, n, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
headers = {"Authorization": f"Bearer {credential}", "Accept": "application/json, text/event-stream"}
init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}


def rss() -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise SystemExit("no VmRSS")


async def session(client, opened, hold):
    r = await client.post(url, json=init, headers=headers)
    sid = r.headers["mcp-session-id"]
    h = {**headers, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18"}
    await client.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=h)
    async with client.stream("GET", url, headers={**h, "Accept": "text/event-stream"}) as resp:
        assert resp.status_code == 200, resp.status_code
        opened.release()
        await hold.wait()


async def open_streams(client, count, hold):
    opened = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(session(client, opened, hold)) for _ in range(count)]
    for _ in range(count):
        await asyncio.wait_for(opened.acquire(), 60)
    return tasks


async def main():
    limits = httpx2.Limits(max_connections=2 * n + 10, max_keepalive_connections=2 * n + 10)
    async with httpx2.AsyncClient(timeout=60, limits=limits) as client:
        hold = asyncio.Event()
        # The first N streams warm up what is shared (pools, allocator
        # arenas); the next N are measured.
        start = rss()
        first = await open_streams(client, n, hold)
        await asyncio.sleep(1)
        before = rss()
        second = await open_streams(client, n, hold)
        await asyncio.sleep(1)
        during = rss()
        hold.set()
        await asyncio.gather(*first, *second)
    per = (during - before) / n
    print(f"{2 * n} open event streams: agentry RSS {start / 2**20:.1f} MiB at start, "
          f"{before / 2**20:.1f} MiB with {n}, {during / 2**20:.1f} MiB with {2 * n}: "
          f"{per / 1024:.1f} KiB per stream")


asyncio.run(main())
