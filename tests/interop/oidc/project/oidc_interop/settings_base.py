"""Settings shared by the three roles of the test-only reference federation.

Test-only: fixed secret, DEBUG on, plain HTTP on 127.0.0.1. Everything that
differs per run comes from the environment that bootstrap.sh sets:
WORK (scratch dir: SQLite files, state files), TA_PORT, OP_PORT, RP_PORT.
"""
import os
from pathlib import Path

import aiohttp

WORK = Path(os.environ["WORK"])
HOST = "127.0.0.1"
TA_PORT = int(os.environ["TA_PORT"])
OP_PORT = int(os.environ["OP_PORT"])
RP_PORT = int(os.environ["RP_PORT"])

# Entity IDs. No trailing slash: the package compares these strings verbatim
# (authority_hints vs the TA's sub, TrustChain.trust_anchor__sub, ...).
TA_ID = f"http://{HOST}:{TA_PORT}"
OP_ID = f"http://{HOST}:{OP_PORT}/oidc/op"  # the provider app's URLs live under oidc/op/
RP_ID = f"http://{HOST}:{RP_PORT}/oidc/rp"  # the relying_party app's URLs live under oidc/rp/

# Trust mark ids issued by the TA (SPID form <TA>/<entity_role>/<profile>/).
TM_RP = f"{TA_ID}/openid_relying_party/public/"
TM_OP = f"{TA_ID}/openid_provider/private/"

# The package's settings names, shared by all roles.
OIDCFED_DEFAULT_TRUST_ANCHOR = TA_ID
OIDCFED_TRUST_ANCHORS = [TA_ID]
# Plain http on loopback needs no TLS relaxation: "ssl" only matters for
# https URLs (aiohttp) and requests' verify= is ignored for http.
HTTPC_PARAMS = {
    "connection": {"ssl": True},
    "session": {"timeout": aiohttp.ClientTimeout(total=8)},
}
HTTPC_TIMEOUT = 8

SECRET_KEY = "test-only-not-secret"  # nosec - loopback test peer
DEBUG = True  # error pages with tracebacks in $WORK/log/*.log
ALLOWED_HOSTS = [HOST, "localhost"]
BASE_DIR = Path(__file__).resolve().parent.parent

INSTALLED_APPS = [
    "spid_cie_oidc.accounts",  # AUTH_USER_MODEL with the JSON `attributes` the OP releases
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "bootstrap_italia_template",  # base templates the OP/RP pages extend
    "spid_cie_oidc.entity",
    "oidc_interop",  # our management commands and the test hook
]
AUTH_USER_MODEL = "spid_cie_oidc_accounts.User"

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "oidc_interop.urls"
WSGI_APPLICATION = "oidc_interop.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def role_settings(role: str) -> dict:
    """Per-role values. The three servers share the host 127.0.0.1 and browsers
    (and requests.Session) send cookies to every port of a host, so each role
    gets its own cookie names or the RP's login would clobber the OP's session."""
    return dict(
        INTEROP_ROLE=role,
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(WORK / f"{role}.sqlite3"),
            }
        },
        SESSION_COOKIE_NAME=f"{role}_sessionid",
        CSRF_COOKIE_NAME=f"{role}_csrftoken",
        LOGGING={
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"f": {"format": f"%(asctime)s {role} %(name)s %(levelname)s %(message)s"}},
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "f"}},
            "loggers": {
                "spid_cie_oidc": {"handlers": ["console"], "level": "INFO", "propagate": False},
                "django": {"handlers": ["console"], "level": "WARNING", "propagate": False},
                "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},  # access log
            },
        },
    )
