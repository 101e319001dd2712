"""OpenID Provider: SPID profile, or the CIE one with OIDC_OP_PROFILE=cie."""
import os

from .settings_base import *  # noqa: F401,F403
from .settings_base import INSTALLED_APPS, TM_RP, WORK, role_settings

globals().update(role_settings("op"))
INSTALLED_APPS = INSTALLED_APPS + ["spid_cie_oidc.provider"]
# The package reads the profile under two names: provider/settings.py takes
# OIDCFED_PROVIDER_PROFILE (schemas of the authorization request, OP metadata, token,
# introspection; token_endpoint.is_token_renewable reads it directly), while the ID-token
# claims (views/__init__.get_id_token_claims) and the default acr
# (authz_request_view.post) read OIDCFED_DEFAULT_PROVIDER_PROFILE. Both must agree.
OIDC_OP_PROFILE = os.environ.get("OIDC_OP_PROFILE", "spid")
assert OIDC_OP_PROFILE in ("spid", "cie"), OIDC_OP_PROFILE
OIDCFED_PROVIDER_PROFILE = OIDC_OP_PROFILE
OIDCFED_DEFAULT_PROVIDER_PROFILE = OIDC_OP_PROFILE
if OIDC_OP_PROFILE == "cie":
    # Two deployment choices the package leaves to settings, made so that a CIE OP issues
    # refresh tokens that work (check-op --oidc-profile cie runs its refresh cases): the
    # package issues one only when acr_values names an acr of this list (default: SpidL1
    # only, views/__init__.get_refresh_token) and, in the cie profile, renews it only while
    # id_token.iat + OIDCFED_PROVIDER_MAX_CONSENT_TIMEFRAME is in the future
    # (token_endpoint.is_token_renewable compares SECONDS; the default 2 expires it 2 s after
    # the login). The SPID profile keeps the defaults (fixtures/peers/spid-cie-oidc-op.toml).
    OIDCFED_PROVIDER_PROFILES_ACR_4_REFRESH = {
        "spid": ["https://www.spid.gov.it/SpidL1"],
        "cie": [f"https://www.spid.gov.it/SpidL{i}" for i in (1, 2, 3)],
    }
    OIDCFED_PROVIDER_MAX_CONSENT_TIMEFRAME = 3600
# The OP enforces the TA's RP trust mark when it first meets a client (as SPID
# wants); OIDC_REQUIRE_TRUST_MARKS=0 turns that off for a foreign RP without one.
OIDCFED_REQUIRED_TRUST_MARKS = [TM_RP] if os.environ.get("OIDC_REQUIRE_TRUST_MARKS", "1") != "0" else []
# Test hook (oidc_interop/apps.py): when this file holds an acr URI, every new
# login session gets that acr whatever the RP asked for ("their OP gives L1").
OP_FORCE_ACR_FILE = WORK / "op_force_acr"
LOGIN_URL = "/oidc/op/authorization"
