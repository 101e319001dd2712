"""Drives one login through a FOREIGN relying party (ours) at the reference OP's pages.

  foreign_rp_login.py [--decline] [--expect TEXT]... LOGIN_URL USER PASSWORD [STATUS RULE]

GET LOGIN_URL (the RP's login, which redirects to the OP), fill the OP's login form and
consent form (--decline: follow the consent page's "DO NOT AGREE" link instead), follow the
OP's redirect back to the RP's callback and print
`status <code> rule <X-SPID-Rule or -> url <final url>`. Exit 0 only if the RP answered 200, or,
with STATUS and RULE, only if it answered STATUS with X-SPID-Rule RULE; with --expect, only if
the final page also contains every TEXT (e.g. the claims the RP shows).
Run with the venv's python (requests).
"""
import html
import re
import sys
from urllib.parse import urljoin

import requests

from login_driver import follow, forms_of, hop  # needs TA_ID/OP_ID/RP_ID in the environment


def main(login_url, user, password, want_status="200", want_rule=None, decline=False, expect=()):
    s = requests.Session()
    r = follow(s, hop(s, "GET", login_url))
    login_form = next((f for f in forms_of(r.text) if "password" in f["fields"]), None)
    if r.status_code == 200 and login_form:
        data = dict(login_form["fields"], username=user, password=password)
        r = follow(s, hop(s, "POST", urljoin(r.url, login_form["action"]), data=data))
        consent = next((f for f in forms_of(r.text) if "consent" in f["action"]), None)
        if r.status_code == 200 and consent and decline:
            m = re.search(r'<a href="([^"]*)"[^>]*id="do_not_agree"', r.text)
            if not m:
                print("no DO NOT AGREE link on the consent page")
                return 1
            r = follow(s, hop(s, "GET", urljoin(r.url, html.unescape(m.group(1)))))
        elif r.status_code == 200 and consent:
            r = follow(s, hop(s, "POST", urljoin(r.url, consent["action"]), data=consent["fields"]))
    rule = r.headers.get("X-SPID-Rule", "-")
    print(f"status {r.status_code} rule {rule} url {r.url}")
    if r.status_code != 200:
        print(r.text[:1500])
    ok = r.status_code == int(want_status) and (want_rule is None or rule == want_rule)
    for text in expect:
        found = text in r.text
        print(f"page {'shows' if found else 'LACKS'} {text}")
        ok = ok and found
    return 0 if ok else 1


if __name__ == "__main__":
    args, decline, expect = sys.argv[1:], False, []
    while args and args[0] in ("--decline", "--expect"):
        if args.pop(0) == "--decline":
            decline = True
        else:
            expect.append(args.pop(0))
    sys.exit(main(*args[:5], decline=decline, expect=expect))
