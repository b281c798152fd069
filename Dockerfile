# Zhiku: one image for every process (web, Celery worker, Celery beat, migrate, seed).
# The command decides the role; the default is the web server. See docker-compose.yml.
FROM python:3.11-slim

# PYTHONPATH: the checkout in /app comes before the copy pip puts in site-packages, so BASE_DIR (templates,
# locale, staticfiles) is /app whichever directory a command starts in.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=marketplace.settings.production

RUN groupadd --system --gid 1000 zhiku \
    && useradd --system --uid 1000 --gid zhiku --home-dir /app --no-create-home --shell /usr/sbin/nologin zhiku

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes, not on every code edit.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself (what .dockerignore leaves out never reaches the image).
COPY . .
RUN pip install --no-cache-dir . \
    && rm -rf build *.egg-info

# Static files are baked into the image and served by whitenoise. Production settings refuse to load without a
# secret key, so this step gets a throwaway one that exists only for the duration of this RUN line.
RUN DJANGO_SECRET_KEY=build-only-collectstatic-key-not-used-at-runtime-0123456789abcdef \
    python manage.py collectstatic --noinput

# Code and static files stay owned by root (read-only to the app); only uploaded media is writable.
RUN mkdir -p /app/media && chown zhiku:zhiku /app/media
USER zhiku

EXPOSE 8000

# /healthz checks database, cache and broker: 200 when all are up, 503 (urlopen raises, exit 1) otherwise.
# Only the web process listens on 8000: docker-compose.yml disables this check for worker, beat and one-shots.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["gunicorn", "marketplace.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
