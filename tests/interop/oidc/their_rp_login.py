"""Drives one login of the reference RP at a FOREIGN OP (ours): the RP's "Entra con SPID"
URL for `--op`, then the foreign OP's pages by form id (login-form, otp-form, consent-form:
the spid-harness OP), back to the RP's attributes page.

  their_rp_login.py OP_ID USER PASSWORD OTP [PROFILE [SCOPE]]

PROFILE (default spid) is the login URL's `&profile=` (the RP's "Entra con SPID" / CIE
button), which picks the claims it asks for (RP_REQUEST_CLAIM_BY_PROFILE); SCOPE (default:
the RP's, `openid`) its `&scope=`.
Prints the attributes the RP shows; exit 0 only if the RP answered 200 on
/oidc/rp/echo_attributes with a fiscal_number. Reads RP_ID (and TA_ID/OP_ID) from the
environment ($WORK/env). Run with the venv's python (requests).
"""
import json
import re
import sys
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import requests

from login_driver import RP_ID, follow, hop


class IdForms(HTMLParser):
    """<form id=...> with hidden inputs (the submit button's name/value is added by the caller)."""

    def __init__(self):
        super().__init__()
        self.forms = {}
        self.current = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id"):
            self.current = {"action": a.get("action", ""), "fields": {}}
            self.forms[a["id"]] = self.current
        elif tag == "input" and self.current is not None and a.get("name") and a.get("type") == "hidden":
            self.current["fields"][a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None


def main(op, user, password, otp, profile="spid", scope=None):
    s = requests.Session()
    params = {"provider": op, "profile": profile, **({"scope": scope} if scope else {})}
    r = follow(s, hop(s, "GET", f"{RP_ID}/authorization", params=params))
    steps = {
        "login-form": {"username": user, "password": password, "action": "login"},
        "otp-form": {"otp": otp, "action": "verify"},
        "consent-form": {"action": "accept"},
    }
    for _ in range(6):
        p = IdForms()
        p.feed(r.text)
        form_id = next((f for f in steps if f in p.forms), None)
        if r.status_code != 200 or form_id is None:
            break
        f = p.forms[form_id]
        r = follow(s, hop(s, "POST", urljoin(r.url, f["action"]), data=dict(f["fields"], **steps[form_id])))
    attrs = dict(re.findall(r"<dt>\s*([^<]+?):\s*</dt>\s*<dd>\s*([^<]*?)\s*</dd>", r.text))
    print(f"status {r.status_code} url {r.url}")
    print("RP shows:", json.dumps(attrs, ensure_ascii=False))
    ok = (r.status_code == 200 and urlparse(r.url).path.endswith("/echo_attributes")
          and attrs.get("fiscal_number", "").startswith("TINIT-"))
    if not ok:
        print(r.text[:1500])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:7]))
