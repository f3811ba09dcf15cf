import os

from django.conf import settings
from django.core.asgi import get_asgi_application

from anakinra_cds.db_waits import bound_database_waits

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anakinra_cds.settings")
application = get_asgi_application()
# Serving requests: no wait for the database longer than DATABASE_WAIT_TIMEOUT_SECONDS (anakinra_cds/db_waits.py).
bound_database_waits(seconds=settings.DATABASE_WAIT_TIMEOUT_SECONDS)
