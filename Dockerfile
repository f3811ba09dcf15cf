# The app under gunicorn (worker model: deploy/gunicorn.conf.py). Run alone, it migrates and loads the
# clinical data on start; docker-compose.yml and deploy/kubernetes/ run those once, before the app
# replicas start, and start the replicas with gunicorn only.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

COPY . .
RUN SECRET_KEY=collectstatic-only DEBUG=false python manage.py collectstatic --noinput -v 0 \
    && useradd --system --uid 10001 --no-create-home app
# A numeric user, so Kubernetes can verify runAsNonRoot.
USER 10001

EXPOSE 8000
# Liveness only (never touches the database, so a database outage does not get the app restarted); load
# balancers and readiness probes use /readyz. The start period covers the migrations and data load in CMD.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py load_clinical_data && exec gunicorn -c deploy/gunicorn.conf.py anakinra_cds.wsgi:application"]
