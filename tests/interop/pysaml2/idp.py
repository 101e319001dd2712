"""Test-only SPID Identity Provider built on pysaml2, used to check our reference SP from the outside.

No login page: every verified AuthnRequest is answered at once for a fixed test user, at the level
set by --level or by GET /level?set=https://www.spid.gov.it/SpidL1 (so one process serves both runs).
Routes: /metadata, /sso (HTTP-Redirect GET or HTTP-POST), /level.
With --profile cie it is configured as a CIE ID IdP would be (the CIE eID SAML documentation):
entityID <base>/idp/profile/SAML2/POST/SSO, SSO at the Shibboleth paths
/idp/profile/SAML2/{Redirect,POST}/SSO, unsigned metadata also at /idp/shibboleth, and a user
carrying the eIDAS minimum set (fiscalNumber TINIT-, dateOfBirth YYYY-MM-DD). Only configuration
changes: the request handling and the Responses are pysaml2's.
Usage: idp.py --port I --key K --cert C --sp-metadata URL [--level URI] [--profile spid|cie]
"""
import argparse
import base64
import secrets
import sys
from urllib.parse import parse_qs

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_TRANSIENT, NameID
from saml2.server import Server

from peer import SIGNING, SPID_LEVELS, base_config, post_form, reply, serve, signed_metadata

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--cert", required=True)
ap.add_argument("--sp-metadata", required=True, help="our SP's metadata URL (or file), loaded at the first request")
ap.add_argument("--level", default="https://www.spid.gov.it/SpidL2", choices=sorted(SPID_LEVELS))
ap.add_argument("--profile", default="spid", choices=["spid", "cie"])
args = ap.parse_args()

BASE = f"http://127.0.0.1:{args.port}"
CIE = args.profile == "cie"
LEVEL = args.level
if CIE:
    ENTITY_ID = f"{BASE}/idp/profile/SAML2/POST/SSO"
    SSO = [(f"{BASE}/idp/profile/SAML2/Redirect/SSO", BINDING_HTTP_REDIRECT), (ENTITY_ID, BINDING_HTTP_POST)]
    USER = {  # the eIDAS minimum set, as a CIE IdP releases it
        "name": ["Mario"],
        "familyName": ["Rossi"],
        "dateOfBirth": ["1980-01-01"],
        "fiscalNumber": ["TINIT-RSSMRA80A01H501U"],
    }
else:
    ENTITY_ID = f"{BASE}/metadata"
    SSO = [(f"{BASE}/sso", BINDING_HTTP_REDIRECT), (f"{BASE}/sso", BINDING_HTTP_POST)]
    USER = {  # the fixed test user; SPID attribute names, values as in attributi.rst
        "spidCode": ["PYSA0000000001"],
        "fiscalNumber": ["TINIT-RSSMRA80A01H501U"],
        "name": ["Mario"],
        "familyName": ["Rossi"],
    }
SSO_PATHS = {url[len(BASE):] for url, _ in SSO}

conf = base_config(ENTITY_ID, args.key, args.cert)
conf["service"] = {
    "idp": {
        "name": "pysaml2 interop IdP",
        "endpoints": {"single_sign_on_service": SSO},
        "name_id_format": [NAMEID_FORMAT_TRANSIENT],
        "want_authn_requests_signed": True,  # refuse unsigned requests (SPID)
        "sign_response": True,
        "sign_assertion": True,
        # Release the attributes the SP asks for, NameFormat basic; the assertion lives 5 minutes.
        "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_BASIC, "attribute_restrictions": None}},
        **SIGNING,
    }
}
if CIE:  # the real CIE metadata is unsigned
    _ed = entity_descriptor(IdPConfig().load(conf))
    _ed.extensions = None
    METADATA = str(_ed)
else:
    METADATA = signed_metadata(IdPConfig().load(conf))  # needs no SP metadata
_server = None


def server():
    """The pysaml2 Server, built at the first SSO request: our SP only starts (and publishes its
    metadata) once this IdP's metadata is being served, so the SP metadata cannot be read earlier."""
    global _server
    if _server is None:
        src = args.sp_metadata
        md = {"remote": [{"url": src}]} if src.startswith("http") else {"local": [src]}
        _server = Server(config=IdPConfig().load({**conf, "metadata": md}))
    return _server


def sso(environ, start_response):
    if environ["REQUEST_METHOD"] == "POST":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        q, binding = parse_qs(environ["wsgi.input"].read(size).decode()), BINDING_HTTP_POST
    else:
        q, binding = parse_qs(environ.get("QUERY_STRING", "")), BINDING_HTTP_REDIRECT
    one = lambda k: q.get(k, [None])[0]  # noqa: E731
    idp = server()
    try:
        # Verifies the request signature (query signature on Redirect) with the SP metadata certificate.
        req = idp.parse_authn_request(one("SAMLRequest"), binding, one("RelayState"), one("SigAlg"), one("Signature"))
        resp_args = idp.response_args(req.message, [BINDING_HTTP_POST])
    except Exception as exc:
        print(f"SSO refused: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return reply(start_response, "403 Forbidden", f"request refused: {type(exc).__name__}: {exc}\n")
    resp_args.pop("binding", None)
    # pysaml2 writes whole-second IssueInstants (…:SSZ) while our SP's request carries
    # milliseconds; our SP compares "not before the request" at whole-second precision.
    response = idp.create_authn_response(
        USER,
        userid="mario.rossi",
        # SPID: transient NameID whose NameQualifier is the IdP entityID.
        name_id=NameID(format=NAMEID_FORMAT_TRANSIENT, name_qualifier=ENTITY_ID, text="_" + secrets.token_hex(16)),
        authn={"class_ref": LEVEL},
        sign_response=True,
        sign_assertion=True,
        sign_alg=SIGNING["signing_algorithm"],
        digest_alg=SIGNING["digest_algorithm"],
        **resp_args,
    )
    print(f"SSO answered {req.message.id} at {LEVEL} to {resp_args['destination']}", file=sys.stderr, flush=True)
    fields = {"SAMLResponse": base64.b64encode(str(response).encode()).decode(), "RelayState": one("RelayState")}
    return reply(start_response, "200 OK", post_form(resp_args["destination"], fields), "text/html; charset=utf-8")


def app(environ, start_response):
    global LEVEL
    path = environ["PATH_INFO"]
    if path == "/metadata" or (CIE and path == "/idp/shibboleth"):
        return reply(start_response, "200 OK", METADATA, "application/samlmetadata+xml")
    if path in SSO_PATHS:
        return sso(environ, start_response)
    if path == "/level":
        wanted = parse_qs(environ.get("QUERY_STRING", "")).get("set", [LEVEL])[0]
        if wanted not in SPID_LEVELS:
            return reply(start_response, "400 Bad Request", f"unknown level {wanted}\n")
        LEVEL = wanted
        return reply(start_response, "200 OK", f"{LEVEL}\n")
    return reply(start_response, "404 Not Found", "not found\n")


serve(app, args.port)
