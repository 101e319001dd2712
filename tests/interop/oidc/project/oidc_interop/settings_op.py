"""OpenID Provider (SPID profile)."""
import os

from .settings_base import *  # noqa: F401,F403
from .settings_base import INSTALLED_APPS, TM_RP, WORK, role_settings

globals().update(role_settings("op"))
INSTALLED_APPS = INSTALLED_APPS + ["spid_cie_oidc.provider"]
OIDCFED_PROVIDER_PROFILE = "spid"
OIDCFED_DEFAULT_PROVIDER_PROFILE = "spid"
# The OP enforces the TA's RP trust mark when it first meets a client (as SPID
# wants); OIDC_REQUIRE_TRUST_MARKS=0 turns that off for a foreign RP without one.
OIDCFED_REQUIRED_TRUST_MARKS = [TM_RP] if os.environ.get("OIDC_REQUIRE_TRUST_MARKS", "1") != "0" else []
# Test hook (oidc_interop/apps.py): when this file holds an acr URI, every new
# login session gets that acr whatever the RP asked for ("their OP gives L1").
OP_FORCE_ACR_FILE = WORK / "op_force_acr"
LOGIN_URL = "/oidc/op/authorization"
