"""Trust Anchor: the federation authority app (fetch, list, resolve, trust_mark_status)."""
from .settings_base import *  # noqa: F401,F403
from .settings_base import INSTALLED_APPS, TM_OP, TM_RP, role_settings

globals().update(role_settings("ta"))
INSTALLED_APPS = INSTALLED_APPS + ["spid_cie_oidc.authority"]
# Trust marks the TA itself verifies when /resolve builds a chain (so the
# resolve response lists them); the package default is none.
OIDCFED_REQUIRED_TRUST_MARKS = [TM_RP, TM_OP]
