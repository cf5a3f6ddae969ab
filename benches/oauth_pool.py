"""Single-use inputs for the OAuth load runs of benches/http_load.sh: a
public client with a remembered consent, then COUNT authorization codes or
COUNT refresh tokens, as token-request bodies one per line, so that every
request under load redeems a fresh one. Codes live 60 s: make them just
before their run.

usage: oauth_pool.py BASE SESSION_COOKIE COUNT codes|refresh FILE
"""
import base64
import hashlib
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urlparse

import requests

base, cookie, count, kind, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
redirect = "http://127.0.0.1:9/callback"
verifier = "load-test-verifier-" + "x" * 40
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
http = requests.Session()
name, value = cookie.split("=", 1)
http.cookies.set(name, value)
client = http.post(f"{base}/oauth/register", json={"client_name": "load", "redirect_uris": [redirect], "token_endpoint_auth_method": "none"}).json()["client_id"]
params = {"response_type": "code", "client_id": client, "redirect_uri": redirect, "code_challenge": challenge, "code_challenge_method": "S256", "scope": "audit:read"}
authorize = f"{base}/oauth/authorize?{urlencode(params)}"
page = http.get(authorize, allow_redirects=False).text
csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
http.post(f"{base}/oauth/authorize", data={**params, "csrf_token": csrf, "decision": "allow"}, allow_redirects=False)


def code():
    res = http.get(authorize, allow_redirects=False)
    return parse_qs(urlparse(res.headers["location"]).query)["code"][0]


def redeem_body(c):
    return urlencode({"grant_type": "authorization_code", "code": c, "redirect_uri": redirect, "code_verifier": verifier, "client_id": client})


def refresh_body(_):
    t = requests.post(f"{base}/oauth/token", data=redeem_body(code()), headers={"Content-Type": "application/x-www-form-urlencoded"}).json()
    return urlencode({"grant_type": "refresh_token", "refresh_token": t["refresh_token"], "client_id": client})


make = (lambda _: redeem_body(code())) if kind == "codes" else refresh_body
with ThreadPoolExecutor(8) as pool:
    bodies = list(pool.map(make, range(count)))
with open(out, "w") as f:
    f.write("\n".join(bodies) + "\n")
