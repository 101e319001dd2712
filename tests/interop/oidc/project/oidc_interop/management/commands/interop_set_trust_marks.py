"""OP/RP: publish the trust marks the TA issued (output of interop_onboard)
in this entity's Entity Configuration. ECs are built per request: no restart."""
import json

from django.core.management.base import BaseCommand
from spid_cie_oidc.entity.models import FederationEntityConfiguration


class Command(BaseCommand):
    help = "Set trust_marks of this role's entity from a JSON file"

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, **o):
        with open(o["file"]) as f:
            tms = json.load(f)
        conf = FederationEntityConfiguration.objects.get(is_active=True)
        conf.trust_marks = tms
        conf.save()
        self.stdout.write(f"{conf.sub}: {len(tms)} trust mark(s)")
