"""RP: print the decoded ID token (header and claims) and access token claims
of the last login the reference RP completed, as JSON (for tests: acr, sub, ...)."""
import json

from django.core.management.base import BaseCommand
from spid_cie_oidc.entity.jwtse import unpad_jwt_head, unpad_jwt_payload
from spid_cie_oidc.relying_party.models import OidcAuthenticationToken


class Command(BaseCommand):
    help = "Show the tokens of the RP's last completed login"

    def handle(self, **o):
        t = OidcAuthenticationToken.objects.exclude(id_token=None).order_by("-created").first()
        if not t:
            raise SystemExit("no completed login")
        self.stdout.write(json.dumps({
            "op": t.authz_request.provider_id,
            "id_token_header": unpad_jwt_head(t.id_token),
            "id_token": unpad_jwt_payload(t.id_token),
            "access_token": unpad_jwt_payload(t.access_token),
            "request": json.loads(t.authz_request.data),
        }, indent=2))
