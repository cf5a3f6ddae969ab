"""Stock MCP machine clients (the official Python SDK's client-credentials
extension) calling a tool on a server protected by agentry, with no
client-side patching: `ClientCredentialsOAuthProvider` with an agent's id
and API key, or `PrivateKeyJWTOAuthProvider` with a key whose public half
the agent registered.

usage: client_machine.py secret MCP_URL ISSUER CLIENT_ID CLIENT_SECRET
       client_machine.py private_key_jwt MCP_URL ISSUER CLIENT_ID PRIVATE_KEY_PEM_FILE ALG
Prints one JSON object.
"""
import asyncio
import json
import sys

import httpx2
from mcp.client.auth import TokenStorage
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

mode, mcp_url, issuer, client_id = sys.argv[1:5]


class Memory(TokenStorage):
    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, info):
        self.client = info


async def main():
    storage = Memory()
    if mode == "secret":
        provider = ClientCredentialsOAuthProvider(
            server_url=mcp_url, storage=storage, client_id=client_id, client_secret=sys.argv[5], issuer=issuer
        )
    else:
        key = open(sys.argv[5]).read()
        params = SignedJWTParameters(issuer=client_id, subject=client_id, signing_key=key, signing_algorithm=sys.argv[6])
        provider = PrivateKeyJWTOAuthProvider(
            server_url=mcp_url,
            storage=storage,
            client_id=client_id,
            assertion_provider=params.create_assertion_provider(),
            issuer=issuer,
        )
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with streamable_http_client(mcp_url, http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("search", {"query": "incidents"})
    print(json.dumps({"text": result.content[0].text, "access_token": storage.tokens.access_token}))


asyncio.run(main())
