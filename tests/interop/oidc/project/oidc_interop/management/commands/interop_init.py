"""Migrate this role's (fresh) database, then create its entity (fresh keys,
metadata), its admin user and, on the OP, the test users."""
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from spid_cie_oidc.entity.models import FederationEntityConfiguration

from oidc_interop import entities


class Command(BaseCommand):
    help = "Create this role's federation entity (and the OP's test users)"

    def handle(self, **options):
        role = settings.INTEROP_ROLE
        call_command("migrate", verbosity=0)  # same process: saves a Django start-up per role
        conf = FederationEntityConfiguration(**getattr(entities, f"{role}_conf")())
        # full_clean = the checks the admin form would run (metadata schema, keys).
        conf.full_clean()
        conf.save()
        users = get_user_model()
        users.objects.create_superuser("admin", "admin@example.org", "oidcadmin")
        if role == "op":
            for username, password, attrs in entities.USERS:
                u = users(username=username, email=attrs.get("email"), attributes=attrs,
                          first_name=attrs.get("given_name"), last_name=attrs.get("family_name"))
                u.set_password(password)
                u.save()
        if role == "ta":
            from spid_cie_oidc.authority.models import FederationEntityProfile

            # One onboarding profile per leaf type; each carries a trust mark template.
            for name, cat, tm_id, org_type in (
                ("SPID public RP", "openid_relying_party", settings.TM_RP, "public"),
                ("SPID OP", "openid_provider", settings.TM_OP, "private"),
            ):
                FederationEntityProfile.objects.create(
                    name=name, profile_category=cat, profile_id=tm_id,
                    trust_mark_template={
                        "organization_type": org_type,
                        "organization_name": "Test organisation",
                        "id_code": {"ipa_code": "test"} if org_type == "public" else {"vat_number": "IT12345678901"},
                        "email": "ops@example.org",
                        "logo_uri": f"{settings.TA_ID}/logo.svg",
                        "ref": f"{settings.TA_ID}/onboarding",
                    },
                )
        self.stdout.write(f"{role}: {conf.sub} kids fed={conf.kids}")
