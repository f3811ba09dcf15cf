"""Django's PostgreSQL backend with the request-serving bounds of anakinra_cds/db_waits.py (ENGINE
"anakinra_cds.postgresql", set in settings for every PostgreSQL DATABASE_URL)."""
