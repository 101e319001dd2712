#!/usr/bin/env python
"""manage.py for the test-only reference federation; the role comes from
DJANGO_SETTINGS_MODULE (oidc_interop.settings_ta | settings_op | settings_rp)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oidc_interop.settings_ta")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
