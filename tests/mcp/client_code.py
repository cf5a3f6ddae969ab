"""A stock MCP client (the official Python SDK's OAuthClientProvider)
signing a user in through agentry: discovery from the MCP server's 401,
dynamic registration (or a client ID metadata document), authorization
code with PKCE, then a tool call; then a refresh. With --step-up, a third
session calls `publish`, which the server refuses with insufficient_scope
until the SDK has had the user consent to the wider scope.

The browser step is done over HTTP: sign in to agentry with the user's
password, open the authorization URL, press Allow on the consent page, and
hand the redirect's code back to the SDK.

usage: client_code.py [--step-up] AGENTRY_URL MCP_URL USER PASSWORD [CLIENT_METADATA_URL]
With CLIENT_METADATA_URL the client identifies itself by that metadata
document instead of registering. The SDK accepts only https document URLs;
the test serves one on loopback http (agentry admits it with
oauth.allow_http_loopback_client_ids), so the SDK's URL-shape check alone is
relaxed here for loopback addresses.
Prints one JSON object.
"""
import asyncio
import json
import re
import sys
import time
from urllib.parse import parse_qs, urlparse

import httpx2
import requests
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

args = [a for a in sys.argv[1:] if a != "--step-up"]
step_up = "--step-up" in sys.argv[1:]
agentry, mcp_url, user, password = args[0:4]
metadata_url = args[4] if len(args) > 4 else None
if metadata_url:
    import mcp.client.auth.oauth2 as sdk_oauth2

    sdk_oauth2.is_valid_client_metadata_url = lambda u: bool(u) and (
        u.startswith("https://") or u.startswith("http://127.0.0.1:")
    )
REDIRECT = "http://127.0.0.1:33418/callback"


class Memory(TokenStorage):
    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, info: OAuthClientInformationFull):
        self.client = info


browser = requests.Session()
login_page = browser.get(f"{agentry}/login").text
csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)
signed_in = browser.post(
    f"{agentry}/login",
    data={"username": user, "password": password, "csrf_token": csrf},
    allow_redirects=False,
)
assert signed_in.status_code == 303, signed_in.status_code
seen = {"authorize_urls": [], "consents": 0}


async def open_browser(url: str) -> None:
    seen["authorize_url"] = url
    seen["authorize_urls"].append(url)
    page = browser.get(url, allow_redirects=False)
    if page.status_code == 200:
        seen["consent"] = True
        seen["consents"] += 1
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        fields = {k: v.replace("&amp;", "&").replace("&#x2f;", "/").replace("&#x27;", "'") for k, v in fields.items()}
        fields["decision"] = "allow"
        page = browser.post(f"{agentry}/oauth/authorize", data=fields, allow_redirects=False)
    assert page.status_code == 303, (page.status_code, page.text[:500])
    seen["redirect"] = page.headers["location"]


async def callback() -> AuthorizationCodeResult:
    q = parse_qs(urlparse(seen["redirect"]).query)
    return AuthorizationCodeResult(code=q["code"][0], state=q.get("state", [None])[0], iss=q.get("iss", [None])[0])


def provider_for(storage: Memory) -> OAuthClientProvider:
    return OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="SDK test client",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=open_browser,
        callback_handler=callback,
        client_metadata_url=metadata_url,
    )


async def call(provider: OAuthClientProvider, tool: str = "search", arguments: dict | None = None) -> dict:
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with streamable_http_client(mcp_url, http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                result = await session.call_tool(tool, arguments or {"query": "runbooks"})
                return {
                    "tools": [t.name for t in tools.tools],
                    "text": result.content[0].text,
                    "is_error": bool(result.is_error),
                }


async def main():
    storage = Memory()
    provider = provider_for(storage)
    first = await call(provider)
    access = storage.tokens.access_token
    refresh = storage.tokens.refresh_token
    # The access token's lifetime has passed, as far as the client knows:
    # the SDK refreshes before its next request (no new sign-in).
    provider.context.token_expiry_time = time.time() - 1
    second = await call(provider)
    stepped = {}
    if step_up:
        before = storage.tokens.access_token
        stepped = await call(provider, "publish", {"title": "on-call handbook"})
        stepped["new_token"] = storage.tokens.access_token != before
        stepped["token_scope"] = storage.tokens.scope
    print(json.dumps({
        "step_up": stepped,
        "consents": seen["consents"],
        "authorize_urls": seen["authorize_urls"],
        "first": first,
        "second": second,
        "client_id": storage.client.client_id,
        "consent_shown": seen.get("consent", False),
        "authorize_url": seen.get("authorize_url"),
        "refreshed": storage.tokens.access_token != access,
        "refresh_rotated": storage.tokens.refresh_token != refresh,
        "access_token": storage.tokens.access_token,
    }))


asyncio.run(main())
