import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from anakinra_cds.db_waits import bound_database_waits
from anakinra_cds.request_body import chunked_bodies

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anakinra_cds.settings")
# Serving requests: no wait for the database longer than DATABASE_WAIT_TIMEOUT_SECONDS (anakinra_cds/db_waits.py),
# and a chunked body read within the size limit (anakinra_cds/request_body.py).
application = chunked_bodies(get_wsgi_application())
bound_database_waits(seconds=settings.DATABASE_WAIT_TIMEOUT_SECONDS)
