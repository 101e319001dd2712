"""Trust Anchor: onboard a descendant (ours or the reference OP/RP) and print
the trust marks it must publish in its Entity Configuration.

  manage.py interop_onboard --sub URL --type openid_relying_party|openid_provider
      [--jwks FILE] [--name NAME] [--out FILE]

Without --jwks the entity must already be up: its EC is fetched and checked
exactly as the TA admin does (self-signed, authority_hints contains this TA)
and its federation jwks are taken from it. With --jwks (a JSON list of PUBLIC
federation JWKs, or {"keys": [...]}) nothing is fetched, so the trust mark can
be minted before the entity starts.
"""
import json

from django.core.management.base import BaseCommand
from spid_cie_oidc.authority.models import (
    FederationDescendant,
    FederationDescendantContact,
    FederationEntityAssignedProfile,
    FederationEntityProfile,
)
from spid_cie_oidc.authority.validators import validate_entity_configuration
from spid_cie_oidc.entity.models import get_first_self_trust_anchor


class Command(BaseCommand):
    help = "Register a descendant entity at this TA and issue its trust mark"

    def add_arguments(self, parser):
        parser.add_argument("--sub", required=True, help="entity id of the descendant")
        parser.add_argument("--type", required=True, choices=["openid_relying_party", "openid_provider"])
        parser.add_argument("--jwks", help="file with its public federation JWKs (skips the live fetch)")
        parser.add_argument("--name", default="", help="human readable name (max 33 chars)")
        parser.add_argument("--out", help="also write the trust_marks JSON to this file")

    def handle(self, **o):
        ta = get_first_self_trust_anchor()
        if o["jwks"]:
            with open(o["jwks"]) as f:
                jwks = json.load(f)
            jwks = jwks.get("keys", jwks) if isinstance(jwks, dict) else jwks
        else:
            jwks = validate_entity_configuration(o["sub"]).jwks
        desc = FederationDescendant.objects.filter(sub=o["sub"]).first() or FederationDescendant(sub=o["sub"])
        desc.name = (o["name"] or o["sub"])[-33:]
        desc.type, desc.jwks, desc.is_active = o["type"], jwks, True
        desc.status = "valid"  # the model's default (False) is not one of its own choices
        # The admin's validation; with --jwks skip the sub check (it fetches the EC).
        desc.full_clean(exclude=["sub"] if o["jwks"] else None)
        desc.save()
        FederationDescendantContact.objects.get_or_create(entity=desc, contact="ops@example.org", type="email")
        profile = FederationEntityProfile.objects.get(profile_category=o["type"])
        FederationEntityAssignedProfile.objects.get_or_create(descendant=desc, profile=profile, issuer=ta)
        # EC form: [{"id", "trust_mark_type", "trust_mark_id", "trust_mark": <JWS>}]
        tms = json.dumps(desc.trust_marks, indent=2)
        if o["out"]:
            with open(o["out"], "w") as f:
                f.write(tms)
        self.stdout.write(tms)
