"""A real Celery worker on Redis runs a tenant task against the test database."""

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_scopes import scopes_disabled

from accounts.models import Invitation, Role
from accounts.services import hash_token
from accounts.tasks import invitation_email_send
from marketplace.celery import app
from tests.factories import TenantFactory

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.worker


@pytest.fixture
def worker(transactional_db, tmp_path):
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        pytest.skip("needs PostgreSQL and Redis (DATABASE_URL and REDIS_URL): the worker shares the test database")
    queue = f"test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="marketplace.settings.test", CELERY_TASK_ALWAYS_EAGER="false",
               DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
               EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend", EMAIL_FILE_PATH=str(tmp_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "marketplace", "worker", "-P", "solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield queue, tmp_path, process
    app.conf.task_always_eager = previous
    process.terminate()
    process.wait(timeout=20)


def test_worker_sends_the_invitation_inside_the_tenant_scope(worker):
    queue, outbox, process = worker
    tenant = TenantFactory(slug="gamma", name="Gamma School", domain="gamma.test")
    token = "worker-test-token"
    with scopes_disabled():
        invitation = Invitation.objects.create(tenant=tenant, email="t@gamma.test", role=Role.STAFF,
                                               token_hash=hash_token(token),
                                               expires_at=timezone.now() + timedelta(days=1))
    invitation_email_send.apply_async(kwargs={"tenant_id": tenant.pk, "invitation_id": invitation.pk,
                                              "token": token}, queue=queue)
    deadline = time.monotonic() + 180  # a cold worker imports the whole project first; a busy machine is slow
    while time.monotonic() < deadline and not any(outbox.iterdir()):
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.2)
    messages = [p.read_text() for p in outbox.iterdir()]
    assert len(messages) == 1
    assert f"http://gamma.test/invitations/{token}/" in messages[0]
    assert "t@gamma.test" in messages[0]
