"""TA: print a StaffToken. /resolve serves only trust chains already cached in
the TA's DB, unless the request carries `Authorization: <token>` (the bare
token, no "Bearer"), which makes the TA resolve the subject afresh."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from spid_cie_oidc.entity.models import StaffToken


class Command(BaseCommand):
    help = "Create a staff token for privileged /resolve calls"

    def handle(self, **o):
        user = get_user_model().objects.get(username="admin")
        self.stdout.write(StaffToken.objects.create(user=user).token)
