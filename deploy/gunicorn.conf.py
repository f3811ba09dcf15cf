"""gunicorn settings for the container (Dockerfile, docker-compose.yml, deploy/kubernetes/):
    gunicorn -c deploy/gunicorn.conf.py anakinra_cds.wsgi:application

The worker model is chosen from `make bench` (docs/operations-scaling.md, "Worker model"): threads keep
the CPU busy while a commit waits. Each thread holds its own database connection, so one instance
opens up to GUNICORN_WORKERS x GUNICORN_THREADS connections to PostgreSQL (or PgBouncer).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anakinra_cds.env import env_int, env_str

bind = env_str("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = env_str("GUNICORN_WORKER_CLASS", "gthread")
workers = env_int("GUNICORN_WORKERS", 2, minimum=1)
threads = env_int("GUNICORN_THREADS", 8, minimum=1)
# Longer than the balancer's idle timeout for its connections to us, so gunicorn never closes first.
keepalive = env_int("GUNICORN_KEEPALIVE_SECONDS", 75, minimum=1)
# A request stuck longer than this is killed with its worker: a last resort. A database that does not answer
# is bounded well before it (DATABASE_CONNECT_TIMEOUT, DATABASE_WAIT_TIMEOUT_SECONDS: a 503, the worker kept).
timeout = env_int("GUNICORN_TIMEOUT_SECONDS", 30, minimum=5)
graceful_timeout = 20
accesslog = "-"
