"""Interoperability check with third-party libraries.

authlib obtains an access token with the OAuth 2.0 client-credentials grant
(endpoints discovered from RFC 8414 metadata); PyJWT verifies it knowing only
the JWKS URL; the token is then used on the API. Prints one JSON object.

usage: oauth_client.py BASE_URL CLIENT_ID CLIENT_SECRET AUTH_METHOD
"""
import json
import sys

import jwt
import requests
from authlib.integrations.requests_client import OAuth2Session

base, client_id, secret, method = sys.argv[1:5]
meta = requests.get(f"{base}/.well-known/oauth-authorization-server", timeout=10).json()
session = OAuth2Session(client_id, secret, token_endpoint_auth_method=method, scope="knowledge:read metrics:report")
token = session.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
access = token["access_token"]

signing_key = jwt.PyJWKClient(meta["jwks_uri"]).get_signing_key_from_jwt(access)
claims = jwt.decode(access, signing_key.key, algorithms=["EdDSA"], audience=meta["issuer"], issuer=meta["issuer"])

me = requests.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {access}"}, timeout=10)
print(json.dumps({
    "claims": claims,
    "scope": token.get("scope"),
    "token_type": token["token_type"],
    "expires_in": token.get("expires_in"),
    "kid": signing_key.key_id,
    "me_status": me.status_code,
    "access_token": access,
}))
