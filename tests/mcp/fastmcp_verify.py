"""fastmcp's JWTVerifier, configured with agentry's JWKS, issuer and an MCP
server's URI as audience, verifying a token: prints {"valid", "scopes",
"client_id"}.

usage: fastmcp_verify.py TOKEN ISSUER AUDIENCE
"""
import asyncio
import json
import sys

from fastmcp.server.auth.providers.jwt import JWTVerifier

token, issuer, audience = sys.argv[1:4]


async def main():
    verifier = JWTVerifier(jwks_uri=f"{issuer}/.well-known/jwks.json", issuer=issuer, audience=audience, algorithm="EdDSA")
    access = await verifier.verify_token(token)
    print(json.dumps({
        "valid": access is not None,
        "scopes": access.scopes if access else [],
        "client_id": access.client_id if access else None,
    }))


asyncio.run(main())
