"""Drives one login through a FOREIGN relying party (ours) at the reference OP's pages.

  foreign_rp_login.py LOGIN_URL USER PASSWORD [STATUS RULE]

GET LOGIN_URL (the RP's login, which redirects to the OP), fill the OP's login form and
consent form, follow the OP's redirect back to the RP's callback and print
`status <code> rule <X-SPID-Rule or -> url <final url>`. Exit 0 only if the RP answered 200, or,
with STATUS and RULE, only if it answered STATUS with X-SPID-Rule RULE.
Run with the venv's python (requests).
"""
import sys
from urllib.parse import urljoin

import requests

from login_driver import follow, forms_of, hop  # needs TA_ID/OP_ID/RP_ID in the environment


def main(login_url, user, password, want_status="200", want_rule=None):
    s = requests.Session()
    r = follow(s, hop(s, "GET", login_url))
    login_form = next((f for f in forms_of(r.text) if "password" in f["fields"]), None)
    if r.status_code == 200 and login_form:
        data = dict(login_form["fields"], username=user, password=password)
        r = follow(s, hop(s, "POST", urljoin(r.url, login_form["action"]), data=data))
        consent = next((f for f in forms_of(r.text) if "consent" in f["action"]), None)
        if r.status_code == 200 and consent:
            r = follow(s, hop(s, "POST", urljoin(r.url, consent["action"]), data=consent["fields"]))
    rule = r.headers.get("X-SPID-Rule", "-")
    print(f"status {r.status_code} rule {rule} url {r.url}")
    if r.status_code != 200:
        print(r.text[:1500])
    ok = r.status_code == int(want_status) and (want_rule is None or rule == want_rule)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
