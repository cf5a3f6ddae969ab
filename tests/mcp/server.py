"""A stock MCP server (the official Python SDK's MCPServer) protected by
agentry: its TokenVerifier checks agentry's JWTs against the JWKS, and its
AuthSettings name agentry as the authorization server, so the SDK serves the
protected resource metadata pointing there.

usage: server.py ISSUER PORT REQUIRED_SCOPE
Serves http://127.0.0.1:PORT/mcp until killed.
"""
import sys

import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

issuer, port, required = sys.argv[1], int(sys.argv[2]), sys.argv[3]
resource = f"http://127.0.0.1:{port}/mcp"
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


server = MCPServer(
    "knowledge-base",
    token_verifier=AgentryVerifier(),
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


server.run(transport="streamable-http", host="127.0.0.1", port=port, streamable_http_path="/mcp")
