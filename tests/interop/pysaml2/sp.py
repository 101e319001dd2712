"""Test-only SPID Service Provider built on pysaml2, used to check our fake IdP from the outside.

Routes: /metadata (its SP metadata), /login (signed HTTP-Redirect AuthnRequest, SpidL2 minimum),
/acs (HTTP-POST; 200 with NameID and attributes on an accepted login, 403 otherwise).
Usage: sp.py --port S --key K --cert C --idp-metadata FILE
"""
import argparse
import re
import secrets
import sys
from urllib.parse import parse_qs

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_ENTITY, NAMEID_FORMAT_TRANSIENT, Issuer

from peer import SIGNING, SPID_LEVELS, base_config, reply, serve, signed_metadata

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--cert", required=True)
ap.add_argument("--idp-metadata", required=True, help="our IdP metadata, as a local file")
args = ap.parse_args()

BASE = f"http://127.0.0.1:{args.port}"
ENTITY_ID = f"{BASE}/metadata"
conf = base_config(ENTITY_ID, args.key, args.cert)
conf["metadata"] = {"local": [args.idp_metadata]}
conf["name"] = "pysaml2 interop SP"  # becomes the AttributeConsumingService ServiceName
conf["service"] = {
    "sp": {
        "endpoints": {
            # (location, binding, index): SPID wants the ACS at index 0.
            "assertion_consumer_service": [(f"{BASE}/acs", BINDING_HTTP_POST, 0)],
            "single_logout_service": [(f"{BASE}/slo", BINDING_HTTP_REDIRECT)],
        },
        "required_attributes": ["spidCode", "fiscalNumber", "name", "familyName"],
        "requested_attribute_name_format": NAME_FORMAT_BASIC,
        "name_id_format": [NAMEID_FORMAT_TRANSIENT],
        "name_id_policy_format": NAMEID_FORMAT_TRANSIENT,  # pysaml2 then omits AllowCreate
        "authn_requests_signed": True,
        "want_assertions_signed": True,
        "want_response_signed": True,  # our IdP signs both
        "allow_unsolicited": False,
        "force_authn": True,
        "requested_authn_context": {"authn_context_class_ref": ["https://www.spid.gov.it/SpidL2"], "comparison": "minimum"},
        **SIGNING,
    }
}
config = SPConfig().load(conf)
client = Saml2Client(config)
IDP = next(iter(client.metadata.identity_providers()))
OUTSTANDING = {}  # request ID -> RelayState, consumed once (replay protection)


def spid_indexes(ed):
    # pysaml2 numbers the AttributeConsumingService 1 and sets no isDefault; SPID wants index 0 default.
    ed.spsso_descriptor.attribute_consuming_service[0].index = "0"
    ed.spsso_descriptor.assertion_consumer_service[0].is_default = "true"


METADATA = signed_metadata(config, spid_indexes)


def login(start_response):
    relay = secrets.token_urlsafe(16)  # opaque, as SPID wants (no URL)
    req_id, info = client.prepare_for_authenticate(
        entityid=IDP,
        relay_state=relay,
        binding=BINDING_HTTP_REDIRECT,
        sign=True,
        sigalg=SIGNING["signing_algorithm"],
        digest_alg=SIGNING["digest_algorithm"],
        response_binding=None,  # ACS by index only: no ProtocolBinding/AssertionConsumerServiceURL
        assertion_consumer_service_index="0",
        attribute_consuming_service_index="0",
        # SPID wants Issuer Format entity with NameQualifier = entityID.
        issuer=Issuer(text=ENTITY_ID, format=NAMEID_FORMAT_ENTITY, name_qualifier=ENTITY_ID),
    )
    OUTSTANDING[req_id] = relay
    location = dict(info["headers"])["Location"]
    return reply(start_response, "302 Found", "", headers=[("Location", location)])


class LevelTooLow(Exception):
    pass


def refusal_rule(exc):
    """A reason in the X-SPID-Rule header (as our SP does) so the pair can check WHY it refused:
    the harness rule names for an IdP error status and a low level, else pysaml2's exception."""
    if isinstance(exc, LevelTooLow):
        return "assertion.level.insufficient"
    nr = re.search(r"ErrorCode (nr\d+)", str(exc))
    return f"response.status.{nr.group(1)}" if nr else f"pysaml2.{type(exc).__name__}"


def acs(environ, start_response):
    size = int(environ.get("CONTENT_LENGTH") or 0)
    form = parse_qs(environ["wsgi.input"].read(size).decode())
    saml_response = form.get("SAMLResponse", [""])[0]
    try:
        resp = client.parse_authn_request_response(saml_response, BINDING_HTTP_POST, outstanding=OUTSTANDING)
        if resp is None:
            raise ValueError("no response")
        OUTSTANDING.pop(resp.in_response_to, None)
        # pysaml2 does not compare the obtained level with the requested one: SPID needs >= SpidL2.
        classes = [c for c, _, _ in resp.authn_info()]
        if len(classes) != 1 or SPID_LEVELS.get(classes[0], 0) < 2:
            raise LevelTooLow(f"authn context {classes} is below SpidL2")
    except Exception as exc:  # every failure is a refusal; the reason goes to the log, body and header
        print(f"ACS refused: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        rule = refusal_rule(exc)
        return reply(start_response, "403 Forbidden", f"refused ({rule}): {exc}\n", headers=[("X-SPID-Rule", rule)])
    lines = [f"NameID {resp.name_id.text} (NameQualifier {resp.name_id.name_qualifier})", f"level {classes[0]}"]
    lines += [f"{k} = {', '.join(v)}" for k, v in sorted(resp.ava.items())]
    print("ACS accepted: " + "; ".join(lines), file=sys.stderr, flush=True)
    return reply(start_response, "200 OK", "\n".join(lines) + "\n")


def app(environ, start_response):
    path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
    if path == "/metadata":
        return reply(start_response, "200 OK", METADATA, "application/samlmetadata+xml")
    if path == "/login":
        return login(start_response)
    if path == "/acs" and method == "POST":
        return acs(environ, start_response)
    return reply(start_response, "404 Not Found", "not found\n")


serve(app, args.port)
