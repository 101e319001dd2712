"""What each role publishes about itself: its FederationEntityConfiguration
(keys, metadata, authority_hints) and, on the OP, the test users.

Keys are fresh on every bootstrap, made with the package's own create_jwk
(RSA-2048, kid = RFC 7638 thumbprint). Federation keys and OIDC-core keys
differ, as SPID asks. Core keys carry "use": the package picks keys by it
(entity.utils.get_key raises KeyError on a key without "use").
"""
from django.conf import settings
from spid_cie_oidc.entity.jwks import create_jwk, public_jwk_from_private_jwk

SPID_L1, SPID_L2, SPID_L3 = (f"https://www.spid.gov.it/SpidL{i}" for i in (1, 2, 3))
P = "https://attributes.eid.gov.it"
SPID_CLAIMS = [  # the 17 SPID claims (Tabella Attributi 1.3)
    f"{P}/spid_code", "given_name", "family_name", "place_of_birth", "birthdate", "gender",
    f"{P}/company_name", f"{P}/registered_office", f"{P}/fiscal_number",
    f"{P}/company_fiscal_number", f"{P}/vat_number", "document_details", "phone_number",
    "email", f"{P}/e_delivery_service", f"{P}/eid_exp_date", "address",
]
# The CIE profile's claims (the package's OPMetadataCie.claims_supported enum accepts these
# and nothing else; the URI names as in the CIE OP metadata of the 2023 rules).
CIE_CLAIMS = [
    "given_name", "family_name", "email", "email_verified", "gender", "birthdate",
    "phone_number", "phone_number_verified", "place_of_birth", "address", "document_details",
    f"{P}/e_delivery_service", f"{P}/fiscal_number", f"{P}/idANPR", f"{P}/physical_phone_number",
]
# What the package can actually do, advertised honestly (see README, deviations):
SIG_ALGS = ["RS256", "RS512", "ES256", "ES512"]  # verified on request objects / client assertions
OP_SIGNS = ["RS256"]  # create_jws() default: every token the OP signs is RS256
JWE_ALG, JWE_ENC = "RSA-OAEP", "A256CBC-HS512"  # the OP's fixed DEFAULT_JWE_ALG/ENC for userinfo

USERS = [
    # username, password, SPID attributes released by the OP (keys = claim names)
    ("user", "oidcuser", {
        f"{P}/fiscal_number": "TINIT-RSSMRA80A01H501U",
        f"{P}/spid_code": "TEST0000000001",
        "given_name": "Mario",
        "family_name": "Rossi",
        "place_of_birth": {"region": "RM", "locality": "H501"},
        "birthdate": "1980-01-01",
        "gender": "male",
        "email": "mario.rossi@example.org",
        "phone_number": "393331234567",
        f"{P}/e_delivery_service": "mario.rossi@pec.example.org",
        "document_details": {
            "type": "cartaIdentita", "document_number": "CA00000AA",
            "issuer": {"name": "ComuneRoma"},
            "date_of_issuance": "2020-01-02", "date_of_expiry": "2030-01-01",
        },
        "address": {"street_address": "Via Roma 1", "postal_code": "00100",
                    "locality": "Roma", "region": "RM", "country_code": "IT"},
    }),
    ("user2", "oidcuser2", {
        f"{P}/fiscal_number": "TINIT-BNCLRA85M41F205X",
        "given_name": "Laura",
        "family_name": "Bianchi",
        "email": "laura.bianchi@example.org",
    }),
]


def core_key(use):
    jwk = create_jwk()
    jwk["use"] = use
    return jwk


def pub(jwks):
    out = []
    for k in jwks:
        p = public_jwk_from_private_jwk(k)
        if "use" in k:
            p["use"] = k["use"]
        out.append(p)
    return out


def federation_entity(eid, name, **extra):
    # SPID: every entity's EC carries federation_entity with these fields.
    return {
        "organization_name": name,
        "homepage_uri": eid,
        "policy_uri": f"{eid}/policy",
        "logo_uri": f"{eid}/logo.svg",
        "contacts": ["ops@example.org"],
        "federation_resolve_endpoint": f"{eid}/resolve",
        **extra,
    }


def ta_conf():
    ta = settings.TA_ID
    return dict(
        sub=ta,
        entity_type="federation_entity",
        jwks_fed=[create_jwk()],
        jwks_core=[core_key("sig")],
        metadata={"federation_entity": federation_entity(
            ta, "Test Trust Anchor",
            federation_fetch_endpoint=f"{ta}/fetch",
            federation_list_endpoint=f"{ta}/list",
            federation_trust_mark_status_endpoint=f"{ta}/trust_mark_status",
        )},
        # Only the TA may issue our two trust marks; leaves sit right under it.
        trust_mark_issuers={settings.TM_RP: [ta], settings.TM_OP: [ta]},
        constraints={"max_path_length": 1},
        is_active=True,
    )


def op_conf():
    op = settings.OP_ID
    core = [core_key("sig")]
    cie = settings.OIDC_OP_PROFILE == "cie"
    name = "Reference CIE OP (test)" if cie else "Reference SPID OP (test)"
    # The CIE profile (OPMetadataCie) requires scopes_supported, response_modes_supported,
    # grant_types_supported and its own claims_supported; CIE adds the profile and email
    # scopes. tls_client_certificate_bound_access_tokens: the schema's default is true, but
    # nothing here binds tokens to a TLS client certificate (plain HTTP), so false.
    profile_md = {
        "scopes_supported": ["openid", "offline_access", "profile", "email"],
        "claims_supported": CIE_CLAIMS,
        "tls_client_certificate_bound_access_tokens": False,
    } if cie else {
        "scopes_supported": ["openid", "offline_access"],
        "claims_supported": SPID_CLAIMS,
    }
    return dict(
        sub=op,
        entity_type="openid_provider",  # OpBase.get_issuer() looks it up by this
        authority_hints=[settings.TA_ID],
        jwks_fed=[create_jwk()],
        jwks_core=core,
        metadata={
            "federation_entity": federation_entity(op, name),
            "openid_provider": {
                "issuer": op,
                "organization_name": name,  # required by the package's schema
                "authorization_endpoint": f"{op}/authorization",
                "token_endpoint": f"{op}/token",
                "userinfo_endpoint": f"{op}/userinfo",
                "introspection_endpoint": f"{op}/introspection",
                "revocation_endpoint": f"{op}/revocation",
                "jwks": {"keys": pub(core)},  # inline, not jwks_uri (SPID)
                "code_challenge_methods_supported": ["S256"],
                "response_types_supported": ["code"],
                # The OP always answers with a query-string redirect; form_post is not implemented.
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "acr_values_supported": [SPID_L1, SPID_L2, SPID_L3],
                "subject_types_supported": ["pairwise"],
                "claims_parameter_supported": True,
                "request_parameter_supported": True,
                "authorization_response_iss_parameter_supported": True,
                "client_registration_types_supported": ["automatic"],
                "request_authentication_methods_supported": {"authorization_endpoint": ["request_object"]},
                "request_authentication_signing_alg_values_supported": SIG_ALGS,
                "request_object_signing_alg_values_supported": SIG_ALGS,
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": SIG_ALGS,
                "revocation_endpoint_auth_methods_supported": ["private_key_jwt"],
                "id_token_signing_alg_values_supported": OP_SIGNS,
                "userinfo_signing_alg_values_supported": OP_SIGNS,
                "userinfo_encryption_alg_values_supported": [JWE_ALG],
                "userinfo_encryption_enc_values_supported": [JWE_ENC],
                # SPID (Avviso 41) says an OP MUST NOT publish these four, but the
                # package's OPMetadata schema makes them mandatory: its admin and
                # model validation reject an OP without them. Kept, as deployed.
                "id_token_encryption_alg_values_supported": [JWE_ALG],
                "id_token_encryption_enc_values_supported": [JWE_ENC],
                "request_object_encryption_alg_values_supported": [JWE_ALG],
                "request_object_encryption_enc_values_supported": [JWE_ENC],
                **profile_md,
            },
        },
        is_active=True,
    )


def rp_conf():
    rp = settings.RP_ID
    core = [core_key("sig"), core_key("enc")]  # enc: the OP encrypts userinfo to it
    return dict(
        sub=rp,
        entity_type="openid_relying_party",  # the RP views look it up by this
        authority_hints=[settings.TA_ID],
        jwks_fed=[create_jwk()],
        jwks_core=core,
        metadata={
            "federation_entity": federation_entity(rp, "Reference SPID RP (test)"),
            "openid_relying_party": {
                "client_id": rp,
                "client_name": "Reference SPID RP (test)",
                "organization_name": "Reference SPID RP (test)",  # required by the package's schema
                "application_type": "web",
                "contacts": ["ops@example.org"],
                "redirect_uris": [f"{rp}/callback"],
                "response_types": ["code"],
                "grant_types": ["authorization_code", "refresh_token"],
                "client_registration_types": ["automatic"],
                "token_endpoint_auth_method": "private_key_jwt",
                # inline jwks: the OP's token endpoint reads metadata.jwks.keys only
                "jwks": {"keys": pub(core)},
                "id_token_signed_response_alg": "RS256",
                "userinfo_signed_response_alg": "RS256",
                "userinfo_encrypted_response_alg": JWE_ALG,
                "userinfo_encrypted_response_enc": JWE_ENC,
            },
        },
        is_active=True,
    )
