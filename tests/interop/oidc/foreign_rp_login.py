"""Drives one login through a FOREIGN relying party (ours) at the reference OP's pages.

  foreign_rp_login.py LOGIN_URL USER PASSWORD

GET LOGIN_URL (the RP's login, which redirects to the OP), fill the OP's login form and
consent form, follow the OP's redirect back to the RP's callback and print
`status <code> rule <X-SPID-Rule or -> url <final url>`. Exit 0 only if the RP answered 200.
Run with the venv's python (requests).
"""
import sys
from urllib.parse import urljoin

import requests

from login_driver import follow, forms_of, hop  # needs TA_ID/OP_ID/RP_ID in the environment


def main(login_url, user, password):
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
    return 0 if r.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
