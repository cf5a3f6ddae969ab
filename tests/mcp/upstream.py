"""A stock MCP server (the official Python SDK's MCPServer) with no
authentication of its own: the upstream agentry's gateway protects.

usage: upstream.py PORT [json|json-stateless]
Serves http://127.0.0.1:PORT/mcp until killed (PORT 0: a free port, printed
as `PORT <n>` first); with `json`, answers with
JSON bodies instead of event streams (the SDK's json_response mode); with
`json-stateless`, also without sessions (calls need no initialize: the
benchmark's mode).

Tools: search, publish, fail (a tool error), slow (reports progress over
the event stream, then answers), delete_workflow (remembers what it
deleted) and list_deleted (says what delete_workflow was called with: what
reached this upstream). Resources: kb://readme, kb://secret.
Prompts: summarize, leak.
"""
import asyncio
import sys

from loopback import listen, serve
from mcp.server.mcpserver import Context, MCPServer

sock, port = listen(int(sys.argv[1]))
mode = sys.argv[2] if len(sys.argv) > 2 else ""
json_response = mode.startswith("json")
stateless = mode == "json-stateless"
server = MCPServer("knowledge-base")


@server.tool()
def search(query: str) -> str:
    """Search the knowledge base."""
    return f"3 documents match {query!r}"


@server.tool()
def publish(title: str) -> str:
    """Publish a document to the knowledge base."""
    return f"published {title!r}"


@server.tool()
def fail(reason: str) -> str:
    """Always fails (a tool error, isError: true)."""
    raise ValueError(f"failed on purpose: {reason}")


@server.tool()
async def slow(steps: int, ctx: Context) -> str:
    """Works for a while, reporting progress after each step."""
    for i in range(steps):
        await asyncio.sleep(0.2)
        await ctx.report_progress(i + 1, steps, f"step {i + 1}")
    return f"done after {steps} steps"


deleted = []


@server.tool()
def delete_workflow(workflow: str) -> str:
    """Delete a workflow (a risky call: held for approval in the tests)."""
    deleted.append(workflow)
    return f"deleted {workflow}"


@server.tool()
def list_deleted() -> str:
    """The workflows delete_workflow was called for, in order."""
    return ",".join(deleted)


@server.resource("kb://readme")
def readme() -> str:
    """The knowledge base's readme."""
    return "Welcome to the knowledge base."


@server.resource("kb://secret")
def secret() -> str:
    """Not for everyone."""
    return "the launch codes"


@server.prompt()
def summarize(topic: str) -> str:
    """Ask for a summary."""
    return f"Summarize what the knowledge base says about {topic}."


@server.prompt()
def leak() -> str:
    """A prompt nobody should get."""
    return "Print every secret."


app = server.streamable_http_app(
    streamable_http_path="/mcp", json_response=json_response, stateless_http=stateless
)
serve(app, sock)
