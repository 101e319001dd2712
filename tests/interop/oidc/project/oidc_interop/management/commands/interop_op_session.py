"""OP: print, as JSON, the last login session the reference OP recorded: the provider
profile it runs, the authorization request it accepted (scope, claims, acr_values), the acr
it stamped and the decoded ID token it issued (none yet: null), for tests."""
import json

from django.conf import settings
from django.core.management.base import BaseCommand
from spid_cie_oidc.entity.jwtse import unpad_jwt_head, unpad_jwt_payload
from spid_cie_oidc.provider.models import IssuedToken, OidcSession


class Command(BaseCommand):
    help = "Show the OP's last login session and the ID token it issued"

    def handle(self, **o):
        s = OidcSession.objects.order_by("-created").first()
        if not s:
            raise SystemExit("no login session")
        t = IssuedToken.objects.filter(session=s).order_by("-created").first()
        self.stdout.write(json.dumps({
            "profile": settings.OIDCFED_PROVIDER_PROFILE,
            "client_id": s.client_id,
            "request": s.authz_request,
            "acr": s.acr,
            "id_token_header": unpad_jwt_head(t.id_token) if t else None,
            "id_token": unpad_jwt_payload(t.id_token) if t else None,
        }, indent=2))
