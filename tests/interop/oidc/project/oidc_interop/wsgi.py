"""WSGI entry point (runserver uses it too); role chosen by DJANGO_SETTINGS_MODULE."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oidc_interop.settings_ta")
application = get_wsgi_application()
