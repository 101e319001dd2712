"""Test-only SPID-style Service Provider built on python3-saml (the OneLogin SAML toolkit), a
check-sp target for tests/interop/pairs/check-sp-python3-saml.sh.

Routes: /metadata (signed SP metadata), /login (signed AuthnRequest by HTTP-Redirect),
/acs (HTTP-POST: 200 with the NameID and attributes on an accepted login, 403 with the reason
on any refusal).

Configured as close to SPID as python3-saml's settings allow: RSA-SHA256 request signature,
RequestedAuthnContext SpidL2 with Comparison minimum, NameIDPolicy transient, ForceAuthn,
WantAssertionsSigned, an AttributeConsumingService with SPID attributes, Organization and an
"other" ContactPerson. What the toolkit cannot write, the app adds as a SPID integrator would:
  * the AuthnRequest's Issuer gets Format="...:entity" and NameQualifier (SPID requires both;
    spid-sp-test reads the Audience of its Responses from that NameQualifier), through the
    toolkit's own extension point OneLogin_Saml2_Auth.authn_request_class;
  * the metadata's "other" ContactPerson gets the spid:IPACode/spid:Public extensions, before
    the toolkit signs the metadata.
The only check added on top of the toolkit's: the AuthnContextClassRef obtained must be a SPID
level at least SpidL2 (python3-saml does not know SPID levels, and its
failOnAuthnContextMismatch would refuse an L3 answer to a "minimum L2" request).

Usage: sp.py --port P --key K --cert C --idp-metadata FILE_OR_URL
"""

import argparse
import html
import json
import secrets
import socketserver
import sys
import threading
import urllib.parse
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.metadata import OneLogin_Saml2_Metadata
from onelogin.saml2.settings import OneLogin_Saml2_Settings

TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
ENTITY = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
LEVELS = {f"https://www.spid.gov.it/SpidL{n}": n for n in (1, 2, 3)}
ATTRIBUTES = ["spidCode", "name", "familyName", "fiscalNumber", "email"]
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
SPID = "https://spid.gov.it/saml-extensions"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class SpidAuthnRequest(OneLogin_Saml2_Authn_Request):
    """The toolkit's AuthnRequest with a SPID Issuer (Format entity, NameQualifier)."""

    def __init__(self, settings, *args, **kwargs):
        super().__init__(settings, *args, **kwargs)
        entity_id = settings.get_sp_data()["entityId"]
        plain = "<saml:Issuer>%s</saml:Issuer>" % entity_id
        spid = '<saml:Issuer Format="%s" NameQualifier="%s">%s</saml:Issuer>' % (ENTITY, entity_id, entity_id)
        assert plain in self._authn_request, "python3-saml's AuthnRequest template changed"
        self._authn_request = self._authn_request.replace(plain, spid, 1)


class SpidAuth(OneLogin_Saml2_Auth):
    authn_request_class = SpidAuthnRequest


def load_text(src):
    if src.startswith(("http://", "https://")):
        with urllib.request.urlopen(src, timeout=10) as r:
            return r.read().decode()
    with open(src, encoding="utf-8") as f:
        return f.read()


def make_settings(base, key, cert, idp_metadata):
    idp = OneLogin_Saml2_IdPMetadataParser.parse(
        idp_metadata, required_sso_binding=C.BINDING_HTTP_REDIRECT
    )["idp"]
    return OneLogin_Saml2_Settings(
        {
            "strict": True,
            "debug": False,
            "sp": {
                "entityId": f"{base}/metadata",
                "assertionConsumerService": {"url": f"{base}/acs", "binding": C.BINDING_HTTP_POST},
                # Published (SPID asks for one); this test SP does not implement logout.
                "singleLogoutService": {"url": f"{base}/sls", "binding": C.BINDING_HTTP_REDIRECT},
                "attributeConsumingService": {
                    "index": "0",
                    "serviceName": "python3-saml interop test",
                    "serviceDescription": "spid-harness check-sp target (TEST ONLY)",
                    "requestedAttributes": [
                        {"name": a, "isRequired": True, "nameFormat": BASIC} for a in ATTRIBUTES
                    ],
                },
                "NameIDFormat": TRANSIENT,
                "x509cert": cert,
                "privateKey": key,
            },
            "idp": idp,
            "security": {
                "authnRequestsSigned": True,
                "wantAssertionsSigned": True,
                "wantMessagesSigned": False,
                "wantNameId": True,
                "wantAttributeStatement": True,
                "signMetadata": True,
                "requestedAuthnContext": ["https://www.spid.gov.it/SpidL2"],
                "requestedAuthnContextComparison": "minimum",
                "failOnAuthnContextMismatch": False,
                "signatureAlgorithm": C.RSA_SHA256,
                "digestAlgorithm": C.SHA256,
                "rejectDeprecatedAlgorithm": True,
                "wantXMLValidation": True,
            },
            "organization": {
                "it": {"name": "python3-saml interop test SP", "displayname": "python3-saml interop test SP", "url": base}
            },
            "contactPerson": {
                "other": {"givenName": "spid-harness interop", "emailAddress": "interop@example.invalid"}
            },
        }
    )


def sp_metadata(settings):
    """The toolkit's metadata, the SPID ContactPerson extensions added, then signed by it."""
    sec = settings.get_security_data()
    xml = OneLogin_Saml2_Metadata.builder(
        settings.get_sp_data(), sec["authnRequestsSigned"], sec["wantAssertionsSigned"],
        None, None, settings.get_contacts(), settings.get_organization(),
    )
    xml = OneLogin_Saml2_Metadata.add_x509_key_descriptors(xml, settings.get_sp_cert(), False)
    doc = etree.fromstring(xml if isinstance(xml, bytes) else xml.encode())
    for cp in doc.iter(f"{{{MD}}}ContactPerson"):
        if cp.get("contactType") == "other":
            ext = etree.Element(f"{{{MD}}}Extensions", nsmap={"spid": SPID})
            etree.SubElement(ext, f"{{{SPID}}}IPACode").text = "c_h501"
            etree.SubElement(ext, f"{{{SPID}}}Public")
            cp.insert(0, ext)
    xml = etree.tostring(doc, encoding="unicode")
    signed = OneLogin_Saml2_Metadata.sign_metadata(
        xml, settings.get_sp_key(), settings.get_sp_cert(), sec["signatureAlgorithm"], sec["digestAlgorithm"]
    )
    return signed.decode() if isinstance(signed, bytes) else signed


class App:
    def __init__(self, base, settings):
        self.base = base
        self.settings = settings
        self.lock = threading.Lock()
        self.pending = {}  # session cookie -> AuthnRequest ID awaiting its Response

    def request_data(self, environ, post):
        host = environ.get("HTTP_HOST") or urllib.parse.urlsplit(self.base).netloc
        return {
            "https": "off",
            "http_host": host.split(":")[0],
            "server_port": host.split(":")[1] if ":" in host else "80",
            "script_name": environ.get("PATH_INFO", "/"),
            "get_data": dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""))),
            "post_data": post,
        }

    def __call__(self, environ, start):
        path = environ.get("PATH_INFO", "/")
        method = environ["REQUEST_METHOD"]
        try:
            if method == "GET" and path == "/metadata":
                return self.reply(start, "200 OK", sp_metadata(self.settings), "application/samlmetadata+xml")
            if method == "GET" and path == "/login":
                auth = SpidAuth(self.request_data(environ, {}), old_settings=self.settings)
                # An opaque RelayState (SPID: not intelligible), not the toolkit's default (this URL).
                url = auth.login(return_to=secrets.token_hex(16), force_authn=True)
                sid = secrets.token_urlsafe(16)
                with self.lock:
                    self.pending[sid] = auth.get_last_request_id()
                log("login: request", auth.get_last_request_id())
                return self.reply(start, "302 Found", "", headers=[
                    ("Location", url), ("Set-Cookie", f"p3s_sid={sid}; Path=/; HttpOnly; SameSite=None"),
                ])
            if method == "POST" and path == "/acs":
                return self.acs(environ, start)
            return self.reply(start, "404 Not Found", "not found\n")
        except Exception as e:  # noqa: BLE001 - any failure is a refusal with its reason
            log(f"{method} {path}: error {e!r}")
            return self.page(start, "500 Internal Server Error", "error", str(e))

    def acs(self, environ, start):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        if size > 1 << 20:
            return self.page(start, "403 Forbidden", "login refused", "request body too large")
        body = environ["wsgi.input"].read(size).decode("utf-8", "replace")
        post = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        cookies = {}
        for part in (environ.get("HTTP_COOKIE") or "").split(";"):
            k, _, v = part.strip().partition("=")
            cookies[k] = v
        with self.lock:
            # One Response per AuthnRequest: the pending ID is consumed whatever the outcome.
            request_id = self.pending.pop(cookies.get("p3s_sid", ""), None)
        if request_id is None:
            return self.refuse(start, "no AuthnRequest pending in this browser session")
        auth = SpidAuth(self.request_data(environ, post), old_settings=self.settings)
        try:
            auth.process_response(request_id=request_id)
        except Exception as e:  # noqa: BLE001 - the toolkit raises on some malformed Responses
            return self.refuse(start, f"{type(e).__name__}: {e}")
        errors = auth.get_errors()
        if errors:
            return self.refuse(start, f"{', '.join(errors)}: {auth.get_last_error_reason()}")
        if not auth.is_authenticated():
            return self.refuse(start, "not authenticated")
        contexts = auth.get_last_authn_contexts()
        levels = [LEVELS.get((c or "").strip()) for c in contexts]
        if len(levels) != 1 or not levels[0]:
            return self.refuse(start, f"AuthnContextClassRef {contexts} is not one SPID level")
        if levels[0] < 2:
            return self.refuse(start, f"level SpidL{levels[0]} is below the requested SpidL2 (minimum)")
        out = {
            "nameID": auth.get_nameid(),
            "nameIDFormat": auth.get_nameid_format(),
            "nameQualifier": auth.get_nameid_nq(),
            "level": f"SpidL{levels[0]}",
            "sessionIndex": auth.get_session_index(),
            "attributes": auth.get_attributes(),
        }
        log("acs: ACCEPTED", json.dumps(out))
        return self.page(start, "200 OK", "login ok", json.dumps(out, indent=2))

    def refuse(self, start, why):
        log("acs: REFUSED", why)
        return self.page(start, "403 Forbidden", "login refused", why)

    def page(self, start, status, title, text):
        body = (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><pre id='detail'>{html.escape(text)}</pre></body></html>\n"
        )
        return self.reply(start, status, body, "text/html; charset=utf-8")

    def reply(self, start, status, body, ctype="text/plain; charset=utf-8", headers=()):
        data = body.encode()
        start(status, [("Content-Type", ctype), ("Content-Length", str(len(data))), *headers])
        return [data]


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, fmt, *args):
        log("http:", fmt % args)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--idp-metadata", required=True, help="file or URL")
    a = p.parse_args()
    base = f"http://127.0.0.1:{a.port}"
    with open(a.key) as f:
        key = f.read()
    with open(a.cert) as f:
        cert = f.read()
    settings = make_settings(base, key, cert, load_text(a.idp_metadata))
    # (the toolkit validates the settings in its constructor and raises on any error)
    httpd = make_server("127.0.0.1", a.port, App(base, settings), ThreadingServer, QuietHandler)
    log(f"python3-saml SP {base}/metadata listening (IdP {settings.get_idp_data()['entityId']})")
    httpd.serve_forever()


if __name__ == "__main__":
    main()
