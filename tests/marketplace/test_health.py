import json
import shutil
import subprocess

import pytest
from django.test import Client, override_settings

from tests.support.net import free_port, wait_for_port


def test_healthz_reports_each_check_with_latency(db):
    response = Client(HTTP_HOST="10.1.2.3").get("/healthz")  # by IP, as a load balancer probes
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker"}
    assert all(isinstance(c["latency_ms"], float) for c in body["checks"].values())


@pytest.fixture
def private_redis():
    """A Redis server of our own, so the test can stop it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL)
    wait_for_port(port, attempts=50)
    yield process, f"redis://127.0.0.1:{port}/0"
    process.kill()
    process.wait()


def test_stopped_redis_makes_healthz_503(db, private_redis):
    process, url = private_redis
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                          "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}
    with override_settings(CACHES=caches, CELERY_BROKER_URL=url):
        up = Client().get("/healthz")
        assert up.status_code == 200, up.json()
        assert up.json()["checks"]["broker"]["status"] == "ok"

        process.terminate()
        process.wait()
        down = Client().get("/healthz")
    assert down.status_code == 503
    body = down.json()
    assert body["status"] == "down"
    assert body["checks"]["cache"]["status"] == "down" and body["checks"]["broker"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "ok"
    # The probe is public: the kind of failure, not the address of the server that failed.
    assert body["checks"]["cache"]["error"] and url.split("//")[1].split("/")[0] not in json.dumps(body)
