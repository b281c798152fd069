"""Configuration mistakes stop the process with a message that says what to fix."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "x" * 20 + "-production-secret-for-the-deploy-check-0123456789"


SHOW = "from django.conf import settings as s; print("


def manage(*args, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_"))}
    clean.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("url", ["not-a-url", "mysql://u@h/db", "postgres://user@host:port/db", "postgres://host"])
def test_malformed_database_url_is_a_clear_error(url):
    result = manage("check", DATABASE_URL=url)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_refuses_to_start_without_a_secret():
    result = manage("check", DJANGO_SETTINGS_MODULE="marketplace.settings.production")
    assert result.returncode == 2
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_deploy_check_is_clean():
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    DJANGO_SETTINGS_MODULE="marketplace.settings.production", DJANGO_SECRET_KEY=GOOD_SECRET,
                    STRIPE_SECRET_KEY="sk_live_x", STRIPE_WEBHOOK_SECRET="whsec_x")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_embedded_default_needs_no_environment():
    from marketplace.settings import base

    assert base.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" or os.environ.get("DATABASE_URL")
    result = manage("shell", "-v", "0", "-c", SHOW + "s.DATABASES['default']['ENGINE'], "
                    "s.CELERY_TASK_ALWAYS_EAGER, s.CACHES['default']['BACKEND'], s.EMAIL_BACKEND, "
                    "s.STORAGES['default']['BACKEND'])")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True",
                                     "django.core.cache.backends.locmem.LocMemCache",
                                     "django.core.mail.backends.console.EmailBackend",
                                     "django.core.files.storage.FileSystemStorage"]


def test_full_stack_is_switched_on_by_environment():
    result = manage("shell", "-v", "0", "-c", SHOW + "s.DATABASES['default']['ENGINE'], "
                    "s.CELERY_TASK_ALWAYS_EAGER, s.CELERY_BROKER_URL, s.CACHES['default']['BACKEND'], "
                    "s.STORAGES['default']['BACKEND'])",
                    DATABASE_URL="postgres://u:p@db.example:5432/zhiku", REDIS_URL="redis://cache.example:6379/1",
                    AWS_STORAGE_BUCKET_NAME="media", DJANGO_SETTINGS_MODULE="marketplace.settings.base")
    # The database is not reachable from here, but settings load without connecting.
    assert result.stdout.split()[:5] == ["django.db.backends.postgresql", "False", "redis://cache.example:6379/1",
                                         "django.core.cache.backends.redis.RedisCache",
                                         "storages.backends.s3.S3Storage"], result.stderr


def test_on_s3_public_images_have_plain_urls_and_paid_media_signed_ones():
    """Covers, photos and logos go into pages cached for minutes, feeds and posts on other platforms: a signed URL
    would stop working under them. Paid media is handed out only as a short-lived signed URL."""
    code = ("from django.core.files.storage import storages; "
            "print(storages['default'].url('tenants/1/covers/python.png')); "
            "print(storages['private'].url('tenants/1/lessons/one.mp4'))")
    result = manage("shell", "-v", "0", "-c", code, AWS_STORAGE_BUCKET_NAME="zhiku-media", AWS_ACCESS_KEY_ID="id",
                    AWS_SECRET_ACCESS_KEY="secret", AWS_S3_REGION_NAME="us-east-1",
                    DJANGO_SETTINGS_MODULE="marketplace.settings.base")
    assert result.returncode == 0, result.stderr
    cover, lesson = result.stdout.split()[-2:]
    assert cover == "https://zhiku-media.s3.amazonaws.com/tenants/1/covers/python.png"
    assert "/private/tenants/1/lessons/one.mp4?" in lesson and "X-Amz-Expires=300" in lesson


def test_the_deploy_check_warns_of_sandbox_payments_until_stripe_is_set():
    production = {"DJANGO_SETTINGS_MODULE": "marketplace.settings.production", "DJANGO_SECRET_KEY": GOOD_SECRET}
    sandbox = manage("check", "--deploy", **production)
    assert "payments.W001" in sandbox.stderr + sandbox.stdout
    stripe = manage("check", "--deploy", STRIPE_SECRET_KEY="sk_test_x", STRIPE_WEBHOOK_SECRET="whsec_x", **production)
    assert "payments.W001" not in stripe.stderr + stripe.stdout


def test_celery_configuration():
    from django.conf import settings

    from marketplace.celery import app

    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > settings.CELERY_TASK_TIME_LIMIT
    app.loader.import_default_modules()
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks, f"beat names a task that does not exist: {entry['task']}"


def test_concurrent_read_then_write_transactions_on_sqlite_wait_for_each_other(tmp_path, monkeypatch,
                                                                              django_db_blocker):
    """The embedded default's SQLite, as the settings configure it: two requests that each read, then write (a player
    reporting progress on pause and at the end at once) both succeed, the second once the first has committed."""
    import threading
    import time

    from django.db import connections, transaction

    from marketplace.settings.base import database_from_env

    alias = "embedded_probe"
    monkeypatch.delenv("DATABASE_URL", raising=False)  # the embedded default's configuration
    config = database_from_env(default=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    connections.settings[alias] = connections.configure_settings({"default": config})["default"]
    errors, done = [], []

    def report(completed: int, pause: float) -> None:
        try:
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute("SELECT count(*) FROM progress")
                time.sleep(pause)  # the other request reads meanwhile
                cursor.execute("INSERT INTO progress VALUES (1, %s)", [completed])
            done.append(completed)
        except Exception as exc:  # noqa: BLE001 - a failure is what this looks for
            errors.append(exc)
        finally:
            connections[alias].close()

    try:
        with django_db_blocker.unblock():
            with connections[alias].cursor() as cursor:
                cursor.execute("CREATE TABLE progress (lesson INTEGER, completed INTEGER)")
            connections[alias].close()
            first = threading.Thread(target=report, args=(0, 0.4))
            second = threading.Thread(target=report, args=(1, 0.0))
            first.start()
            time.sleep(0.1)
            second.start()
            first.join(30)
            second.join(30)
    finally:
        del connections.settings[alias]
    assert errors == [] and sorted(done) == [0, 1]
