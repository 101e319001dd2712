"""Test hook for negative tests: make the reference OP stamp a fixed acr.

The package takes a session's acr from the LAST entry of the request's
acr_values, so an RP asking only for SpidL2 always gets SpidL2. For "the OP
answers with a lower level than asked" we overwrite the acr of each new login
session while settings.OP_FORCE_ACR_FILE ($WORK/op_force_acr) holds one. The
file is read on every login, so tests can flip it without a restart."""
from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import pre_save


def force_acr(sender, instance, **kwargs):
    path = getattr(settings, "OP_FORCE_ACR_FILE", None)
    if instance._state.adding and path and path.exists():
        acr = path.read_text().strip()
        if acr:
            instance.acr = acr


class InteropConfig(AppConfig):
    name = "oidc_interop"
    default = True

    def ready(self):
        if "spid_cie_oidc.provider" in settings.INSTALLED_APPS:
            from spid_cie_oidc.provider.models import OidcSession

            pre_save.connect(force_acr, sender=OidcSession, dispatch_uid="interop_force_acr")
