"""One URLconf for the three roles: each mounts only its installed app.

TA (entity id = http://127.0.0.1:TA_PORT): /.well-known/openid-federation,
  /fetch, /list, /resolve, /trust_mark_status (+ /advanced_entity_listing, /trust_marked_list)
OP (entity id = .../oidc/op): /oidc/op/.well-known/openid-federation, /oidc/op/resolve,
  /oidc/op/authorization, consent, token, userinfo, introspection, revocation
RP (entity id = .../oidc/rp): /oidc/rp/.well-known/openid-federation, /oidc/rp/resolve,
  /oidc/rp/authorization?provider=<OP>, /oidc/rp/callback, /oidc/rp/echo_attributes, landing
Every role also has /admin/ (admin / oidcadmin).
"""
from django.conf import settings
from django.contrib import admin
from django.urls import path

from spid_cie_oidc.entity.views import entity_configuration, resolve_entity_statement

urlpatterns = [path("admin/", admin.site.urls)]
apps = settings.INSTALLED_APPS

if "spid_cie_oidc.authority" in apps:
    from spid_cie_oidc.authority.urls import urlpatterns as ta_urls
    from spid_cie_oidc.entity.urls import urlpatterns as entity_urls  # root EC + /resolve

    urlpatterns += entity_urls + ta_urls


def leaf(prefix):
    # A leaf's entity id has a path, so its EC and resolve endpoint live under it.
    return [
        path(f"{prefix}/.well-known/openid-federation", entity_configuration),
        path(f"{prefix}/resolve", resolve_entity_statement),
    ]


if "spid_cie_oidc.provider" in apps:
    from spid_cie_oidc.provider.urls import urlpatterns as op_urls

    urlpatterns += op_urls + leaf("oidc/op")

if "spid_cie_oidc.relying_party" in apps:
    from spid_cie_oidc.relying_party.urls import urlpatterns as rp_urls

    urlpatterns += rp_urls + leaf("oidc/rp")
