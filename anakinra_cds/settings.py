"""The one settings module. Every value comes from the environment (see `.env.example`).

`DEBUG=true` is the local quick start (`make run`). Anything else is production: it refuses
to start without a SECRET_KEY and turns on every check in `manage.py check --deploy`.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from anakinra_cds.env import env_bool, env_int, env_json, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY", required=True)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Absolute base URL of this service (scheme + host), used where a link must leave the app:
# CDS Hooks cards and the JWT audience check. Empty means "derive from the request".
SITE_URL = env_str("SITE_URL", "").rstrip("/")

INSTALLED_APPS = [
    "anakinra_cds.apps.SiteConfig",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "simple_history",
    "accounts",
    "audit",
    "evidence",
    "protocols",
    "assessments",
    "api",
    "cds_hooks",
    "bedside",
    "smart",
]

MIDDLEWARE = [
    "anakinra_cds.middleware.ProbeMiddleware",
    "anakinra_cds.middleware.HostCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "anakinra_cds.middleware.ServiceErrorsMiddleware",
    # SMART sessions only: SameSite=None; Secure; Partitioned cookies and the EHR as frame ancestor. Above the
    # session, CSRF, clickjacking and CSP middleware, so it sees their cookies and headers last.
    "smart.middleware.SmartEmbeddingMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.SessionEndedMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "anakinra_cds.urls"
WSGI_APPLICATION = "anakinra_cds.wsgi.application"
ASGI_APPLICATION = "anakinra_cds.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# An unset DATABASE_URL is the embedded quick-start database: an SQLite file beside manage.py
# (`check --deploy` warns when production runs on it).
DATABASE_URL_SET = env_secret("DATABASE_URL", required=False) is not None
DATABASES = {
    "default": dj_database_url.parse(
        env_secret("DATABASE_URL", required=False) or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, plus the bounds on waiting for the database while serving requests
    # (anakinra_cds/db_waits.py: DATABASE_WAIT_TIMEOUT_SECONDS).
    DATABASES["default"]["ENGINE"] = "anakinra_cds.postgresql"
    # A database that accepts and never answers fails a connection attempt after this many seconds (psycopg's
    # minimum is 2), and the request gets a 503 instead of a hung worker. A slow query is bounded by the role's
    # statement_timeout (ALTER ROLE ... SET statement_timeout; docs/operations-resilience.md).
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
        "DATABASE_CONNECT_TIMEOUT", 3, minimum=2
    )
if DATABASES["default"]["ENGINE"] == "anakinra_cds.postgresql" and env_bool("DATABASE_PREPARED_STATEMENTS", True):
    # Server-side binding with prepared statements: the hot path's queries are planned once per
    # connection, not on every request (the API-token join alone took 1 ms to plan). Turn off behind a
    # transaction-pooling proxy (PgBouncer in transaction mode) that cannot keep prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 2})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# While serving requests (anakinra_cds/db_waits.py, installed by wsgi.py and asgi.py): the longest any one wait
# for the database (a query's answer, a commit) may last before the connection is closed and the request gets
# a 503. Bounds a frozen server on an open connection, which neither connect_timeout nor a statement_timeout
# does. Keep it above the role's statement_timeout (docs/operations-resilience.md).
DATABASE_WAIT_TIMEOUT_SECONDS = env_int("DATABASE_WAIT_TIMEOUT_SECONDS", 10, minimum=1)
# /readyz: the longest its one query may run (SET LOCAL statement_timeout), after connecting within
# DATABASE_CONNECT_TIMEOUT.
READYZ_STATEMENT_TIMEOUT_MS = env_int("READYZ_STATEMENT_TIMEOUT_MS", 1000, minimum=1)
# Retry-After (seconds) on a 503 when the database cannot be reached.
SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS = env_int("SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS", 10, minimum=1)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# A form refused by the CSRF check: "the form expired", with what it sent offered back when safe.
CSRF_FAILURE_VIEW = "anakinra_cds.csrf.csrf_failure"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles"))).resolve()
if STATIC_ROOT == BASE_DIR or STATIC_ROOT in BASE_DIR.parents:
    # WhiteNoise serves everything below STATIC_ROOT: never the project (secret key file, settings).
    raise ImproperlyConfigured(f"STATIC_ROOT must be a folder of its own, not {STATIC_ROOT}.")
STATICFILES_DIRS = [BASE_DIR / "static"]
# Hashed, compressed file names in production (needs collectstatic); plain names otherwise.
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_MANIFEST
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Without collectstatic (quick start, tests) WhiteNoise serves straight from the app folders.
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
WHITENOISE_AUTOREFRESH = DEBUG

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Content Security Policy: everything from our own origin, nothing inline.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}

# Transport and cookie security: on by default outside the quick start.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 60 * 60, minimum=60)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    # Only behind a proxy that sets X-Forwarded-Proto itself and strips it from clients.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- CDS Hooks (cds_hooks app): the EHRs that may call /cds-services ------------------------------
# Trusted JWT issuers, each with its keys, jku allow-list, institution protocol and FHIR servers
# (JSON; see cds_hooks/config.py and the README). Empty: every call is refused with 401.
CDS_HOOKS_ISSUERS = env_json("CDS_HOOKS_ISSUERS", {})
# Browser origins allowed to call the CDS endpoints (CORS); empty: none.
CDS_HOOKS_CORS_ORIGINS = env_list("CDS_HOOKS_CORS_ORIGINS", [])
# Clock skew tolerated on exp and iat, and the longest token lifetime (exp - iat) accepted.
CDS_HOOKS_JWT_LEEWAY_SECONDS = env_int("CDS_HOOKS_JWT_LEEWAY_SECONDS", 30, minimum=0)
CDS_HOOKS_JWT_MAX_LIFETIME_SECONDS = env_int("CDS_HOOKS_JWT_MAX_LIFETIME_SECONDS", 300, minimum=1)
# How long a fetched JWK Set is reused, and the timeout of every outgoing call (JWK Sets, FHIR reads).
CDS_HOOKS_JWKS_CACHE_SECONDS = env_int("CDS_HOOKS_JWKS_CACHE_SECONDS", 300, minimum=0)
CDS_HOOKS_HTTP_TIMEOUT_SECONDS = env_int("CDS_HOOKS_HTTP_TIMEOUT_SECONDS", 3, minimum=1)
# A body weight older than this (or undated, or dated before birth) raises the card to at least a
# warning. An operational default, not a clinical number from the protocols: set it per site.
CDS_HOOKS_WEIGHT_MAX_AGE_DAYS = env_int("CDS_HOOKS_WEIGHT_MAX_AGE_DAYS", 7, minimum=1)

# --- Mail: governance notifications (a protocol version submitted for approval) ------------------
# Development (DEBUG=true, make run) prints each message on the console; anything else sends by SMTP
# unless EMAIL_BACKEND says otherwise. A message that cannot be sent never undoes the submission: it is
# logged and audited, and the version is on each reviewer's admin worklist anyway.
EMAIL_BACKEND_PATH = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
SMTP_OPTIONS = {
    "host": env_str("EMAIL_HOST", "localhost"),
    "port": env_int("EMAIL_PORT", 25, minimum=1),
    "username": env_str("EMAIL_HOST_USER", ""),
    "password": env_secret("EMAIL_HOST_PASSWORD", required=False) or "",
    "use_tls": env_bool("EMAIL_USE_TLS", False),
    "timeout": env_int("EMAIL_TIMEOUT_SECONDS", 10, minimum=1),
}
MAILERS = {
    "default": {
        "BACKEND": EMAIL_BACKEND_PATH,
        "OPTIONS": SMTP_OPTIONS if EMAIL_BACKEND_PATH.endswith(".smtp.EmailBackend") else {},
    }
}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "anakinra-cds@localhost")

# --- Protocol governance (accounts, protocols admin) -------------------------------------------
# Log-in throttle (site and admin): after LOGIN_FAILURE_LIMIT failures for one username within
# LOGIN_FAILURE_WINDOW_SECONDS, that username is paused until the oldest failure ages out.
# Counted in the database, so it holds across every gunicorn process.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60, minimum=60)
# History is for reading: a "revert" would bypass drafts, two-person approval and test patients.
SIMPLE_HISTORY_REVERT_DISABLED = True
