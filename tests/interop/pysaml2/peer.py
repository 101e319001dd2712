"""Shared bits of the test-only pysaml2 peers: SPID constants, a loopback WSGI server, replies."""
import html
import os
import shutil
from wsgiref.simple_server import WSGIRequestHandler, make_server

from saml2.metadata import entity_descriptor, sign_entity_descriptor
from saml2.sigver import security_context
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

HERE = os.path.dirname(os.path.abspath(__file__))
SPID_LEVELS = {f"https://www.spid.gov.it/SpidL{n}": n for n in (1, 2, 3)}
SIGNING = {"signing_algorithm": SIG_RSA_SHA256, "digest_algorithm": DIGEST_SHA256}


def base_config(entityid, key, cert):
    return {
        "entityid": entityid,
        "key_file": key,
        "cert_file": cert,
        "xmlsec_binary": shutil.which("xmlsec1"),
        "attribute_map_dir": os.path.join(HERE, "attributemaps"),
        "accepted_time_diff": 5,
    }


def signed_metadata(config, fix=lambda ed: None):
    """The entity's metadata, adjusted by `fix`, signed RSA-SHA256 / SHA-256 like the messages."""
    ed = entity_descriptor(config)
    ed.extensions = None  # drop pysaml2's algsupport list (it advertises md5/sha1): not SPID metadata
    fix(ed)
    sec = security_context(config)
    return sign_entity_descriptor(ed, None, sec, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)[1]


def reply(start_response, status, body, ctype="text/plain; charset=utf-8", headers=()):
    data = body.encode() if isinstance(body, str) else body
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data))), *headers])
    return [data]


def post_form(action, fields):
    """A self-submitting HTML form (the HTTP-POST binding), without JavaScript tricks."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>' for k, v in fields.items() if v
    )
    return (
        "<!DOCTYPE html><html><body onload=\"document.forms[0].submit()\">"
        f'<form method="post" action="{html.escape(action)}">{inputs}<input type="submit" value="Continue"/></form>'
        "</body></html>"
    )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, fmt, *args):  # one line per request on stderr, ends up in the pair log
        print(f"[{self.server.server_port}] {fmt % args}", flush=True)


def serve(app, port):
    make_server("127.0.0.1", port, app, handler_class=_QuietHandler).serve_forever()
