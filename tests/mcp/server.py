"""A stock MCP server (the official Python SDK's MCPServer) protected by
agentry: its TokenVerifier checks agentry's JWTs against the JWKS, and its
AuthSettings name agentry as the authorization server, so the SDK serves the
protected resource metadata pointing there.

usage: server.py ISSUER PORT REQUIRED_SCOPE
Serves http://127.0.0.1:PORT/mcp until killed (PORT 0: a free port, printed
as `PORT <n>` first).

The tool `publish` needs `knowledge:write` as well: the server answers a
call to it on a token without that scope with HTTP 403 and a scope
challenge (`WWW-Authenticate: Bearer error="insufficient_scope",
scope="..."`), as the MCP authorization specification has servers ask for
more scope per operation; a stock client steps up from there.
"""
import json
import sys

import jwt
from loopback import listen, serve
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

issuer, required = sys.argv[1], sys.argv[3]
sock, port = listen(int(sys.argv[2]))
resource = f"http://127.0.0.1:{port}/mcp"
metadata = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
# Tools that need more than the server-wide scope.
TOOL_SCOPES = {"publish": "knowledge:write"}
jwks = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json")


class AgentryVerifier(TokenVerifier):
    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            key = jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=["EdDSA"], audience=resource, issuer=issuer)
        except jwt.PyJWTError:
            return None
        return AccessToken(
            token=token,
            client_id=claims["client_id"],
            scopes=claims["scope"].split(),
            expires_at=claims["exp"],
            resource=claims["aud"],
            subject=claims["sub"],
            claims=claims,
        )


verifier = AgentryVerifier()
server = MCPServer(
    "knowledge-base",
    token_verifier=verifier,
    auth=AuthSettings(
        issuer_url=issuer,
        resource_server_url=resource,
        required_scopes=[required],
        validate_token_resource=True,
    ),
)


@server.tool()
def search(query: str) -> str:
    """Search the knowledge base."""
    return f"3 documents match {query!r}"


@server.tool()
def publish(title: str) -> str:
    """Publish a document to the knowledge base."""
    return f"published {title!r}"


def scope_challenges(app):
    """ASGI wrapper: a `tools/call` of a tool in TOOL_SCOPES on a token
    without that scope gets 403 insufficient_scope naming the scope needed."""

    async def wrapped(scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        needed = None
        try:
            msg = json.loads(body)
            if isinstance(msg, dict) and msg.get("method") == "tools/call":
                needed = TOOL_SCOPES.get(msg.get("params", {}).get("name"))
        except ValueError:
            pass
        if needed:
            auth = dict(scope["headers"]).get(b"authorization", b"").decode()
            token = await verifier.verify_token(auth.removeprefix("Bearer "))
            if token is not None and needed not in token.scopes:
                wanted = " ".join(dict.fromkeys([*token.scopes, needed]))
                challenge = (
                    f'Bearer error="insufficient_scope", scope="{wanted}", '
                    f'resource_metadata="{metadata}", error_description="{needed} is required"'
                )
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"www-authenticate", challenge.encode()), (b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": b'{"error":"insufficient_scope"}'})
                return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await app(scope, replay, send)

    return wrapped


app = scope_challenges(server.streamable_http_app(streamable_http_path="/mcp"))
serve(app, sock)
