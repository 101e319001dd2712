"""Browser-like HTTP driver for the reference federation (run with the venv's python).

  login_driver.py login USER PASSWORD [--op OP_ID] [--expect-acr URI]
      reference RP -> OP login form -> consent -> RP callback -> attributes page
  login_driver.py ec URL          decoded Entity Configuration (header + payload)
  login_driver.py resolve SUB     the TA's /resolve for SUB, with the staff token

Reads TA_ID / OP_ID / RP_ID / WORK from the environment ($WORK/env).
"""
import argparse
import base64
import json
import os
import re
import subprocess  # nosec - runs our own manage.py
import sys
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlparse

import requests

TA_ID, OP_ID, RP_ID = (os.environ[k] for k in ("TA_ID", "OP_ID", "RP_ID"))
TIMEOUT = 30


def b64json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def decode_jws(jws):
    h, p, _ = jws.split(".")
    return {"header": b64json(h), "payload": b64json(p)}


class Forms(HTMLParser):
    """Collects <form>s with their <input>s, as a browser would submit them."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").upper(), "fields": {}})
        elif tag in ("input", "textarea") and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value") or ""


def forms_of(html):
    p = Forms()
    p.feed(html)
    return p.forms


def hop(s, method, url, **kw):
    """One request, no automatic redirects, so every hop is visible."""
    r = s.request(method, url, allow_redirects=False, timeout=TIMEOUT, **kw)
    u = urlparse(r.url)
    print(f"  {method:4} {u.scheme}://{u.netloc}{u.path} -> {r.status_code}"
          + (f" Location: {r.headers['Location'][:110]}" if "Location" in r.headers else ""))
    return r


def follow(s, r):
    while r.status_code in (301, 302, 303, 307):
        r = hop(s, "GET", urljoin(r.url, r.headers["Location"]))
    return r


def fail(msg, r=None):
    print(f"FAIL: {msg}")
    if r is not None:
        print(r.text[:1500])
    sys.exit(1)


def login(user, password, op, expect_acr):
    s = requests.Session()
    print(f"login of {user} at {op} through the reference RP {RP_ID}")
    # 1. The RP's "login with SPID" button: builds the signed request object, 302 to the OP.
    r = hop(s, "GET", f"{RP_ID}/authorization", params={"provider": op, "profile": "spid"})
    if r.status_code != 302 or not r.headers["Location"].startswith(op):
        fail("RP did not redirect to the OP", r)
    authz = parse_qs(urlparse(r.headers["Location"]).query)
    req = decode_jws(authz["request"][0])
    print("  request object:", json.dumps({k: req["payload"].get(k) for k in ("acr_values", "prompt", "scope", "claims")}))
    # 2. The OP's login page: a form with username/password and the request object hidden in it.
    r = follow(s, r)
    login_form = next((f for f in forms_of(r.text) if "password" in f["fields"]), None)
    if r.status_code != 200 or not login_form:
        fail("no login form at the OP", r)
    data = dict(login_form["fields"], username=user, password=password)
    r = hop(s, "POST", urljoin(r.url, login_form["action"]), data=data)
    # 3. Consent page: POST the (hidden "agree") form; the OP redirects to the RP callback.
    r = follow(s, r)
    consent = next((f for f in forms_of(r.text) if "consent" in f["action"]), None)
    if r.status_code != 200 or not consent:
        fail("no consent form at the OP (wrong password?)", r)
    claims = re.findall(r"<li>\s*([^<]+?)\s*</li>", r.text)
    print(f"  consent asks for: {claims}")
    r = hop(s, "POST", urljoin(r.url, consent["action"]), data=consent["fields"])
    loc = r.headers.get("Location", "")
    if not loc.startswith(f"{RP_ID}/callback"):
        fail("OP did not redirect to the RP callback", r)
    cb = parse_qs(urlparse(loc).query)
    print(f"  callback params: {sorted(cb)} (iss={cb.get('iss', ['-'])[0]})")
    # 4. Callback: the RP redeems the code (private_key_jwt + PKCE), calls userinfo
    #    (JWE), logs the user in and shows the attributes page.
    r = follow(s, r)
    attrs = dict(re.findall(r"<dt>\s*([^<]+?):\s*</dt>\s*<dd>\s*([^<]*?)\s*</dd>", r.text))
    if r.status_code != 200 or not urlparse(r.url).path.endswith("/echo_attributes") or not attrs:
        fail("RP did not show the user's attributes", r)
    print("  RP shows:", json.dumps(attrs, ensure_ascii=False))
    # The ID token the RP accepted, from the RP's own DB.
    out = subprocess.run(  # nosec
        [sys.executable, os.path.join(os.path.dirname(__file__), "project", "manage.py"), "interop_tokens"],
        env=dict(os.environ, DJANGO_SETTINGS_MODULE="oidc_interop.settings_rp"),
        check=True, capture_output=True, text=True).stdout
    idt = json.loads(out)["id_token"]
    print("  ID token:", json.dumps({k: idt.get(k) for k in ("iss", "sub", "aud", "acr", "nbf", "exp", "iat")}))
    if not attrs.get("fiscal_number", "").startswith("TINIT-"):
        fail("fiscal_number missing in the RP's user attributes")
    if expect_acr and idt.get("acr") != expect_acr:
        fail(f"acr {idt.get('acr')} != {expect_acr}")
    print(f"PASS login {user}: acr={idt.get('acr')}")


def show_ec(url):
    r = requests.get(url, timeout=TIMEOUT)
    r.raise_for_status()
    print(json.dumps({"content_type": r.headers["Content-Type"], **decode_jws(r.text)}, indent=2))


def resolve(sub):
    token = open(os.path.join(os.environ["WORK"], "ta_staff_token")).read().strip()
    # The bare staff token in Authorization makes the TA build a fresh chain;
    # without it /resolve only answers from chains already cached in its DB.
    r = requests.get(f"{TA_ID}/resolve", params={"sub": sub, "trust_anchor": TA_ID, "format": "json"},
                     headers={"Authorization": token}, timeout=TIMEOUT)
    r.raise_for_status()
    res = r.json()
    res["trust_chain (decoded: iss -> sub)"] = [
        f"{p['iss']} -> {p['sub']}" for p in (decode_jws(j)["payload"] for j in res["trust_chain"])]
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    sp = ap.add_subparsers(dest="cmd", required=True)
    lp = sp.add_parser("login")
    lp.add_argument("user")
    lp.add_argument("password")
    lp.add_argument("--op", default=OP_ID)
    lp.add_argument("--expect-acr")
    sp.add_parser("ec").add_argument("url")
    sp.add_parser("resolve").add_argument("sub")
    a = ap.parse_args()
    if a.cmd == "login":
        login(a.user, a.password, a.op, a.expect_acr)
    elif a.cmd == "ec":
        show_ec(a.url)
    else:
        resolve(a.sub)
