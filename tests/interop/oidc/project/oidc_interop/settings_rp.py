"""Relying Party: SPID profile, or the CIE one with OIDC_RP_PROFILE=cie."""
import os

from .settings_base import *  # noqa: F401,F403
from .settings_base import INSTALLED_APPS, OP_ID, TA_ID, role_settings

globals().update(role_settings("rp"))
INSTALLED_APPS = INSTALLED_APPS + ["spid_cie_oidc.relying_party"]
# OPs this RP offers, each with the TA to resolve it under. A foreign OP (ours)
# is added with OIDC_RP_EXTRA_OPS="http://127.0.0.1:PORT/op-entity-id ...".
# OIDC_RP_PROFILE=cie: the package's CIE schemas (RPMetadataCie for its own metadata;
# AuthenticationResponseCie at the callback, which then requires `iss`). The claims it asks
# for follow the login URL's `&profile=` (RP_REQUEST_CLAIM_BY_PROFILE), not this setting.
OIDC_RP_PROFILE = os.environ.get("OIDC_RP_PROFILE", "spid")
assert OIDC_RP_PROFILE in ("spid", "cie"), OIDC_RP_PROFILE
RP_DEFAULT_PROVIDER_PROFILES = OIDC_RP_PROFILE
OIDCFED_IDENTITY_PROVIDERS = {
    OIDC_RP_PROFILE: {OP_ID: TA_ID, **{op: TA_ID for op in os.environ.get("OIDC_RP_EXTRA_OPS", "").split()}},
}
# acr_values this RP sends (one space-separated string, verbatim into the request
# object). Package default: SpidL2 only.
OIDCFED_ACR_PROFILES = os.environ.get("OIDC_RP_ACR_VALUES", "https://www.spid.gov.it/SpidL2")
LOGIN_REDIRECT_URL = "/oidc/rp/echo_attributes"
LOGOUT_REDIRECT_URL = "/oidc/rp/landing"
LOGIN_URL = "/oidc/rp/landing"
