"""Paid media on S3-compatible storage: a redirect to a short-lived signed URL, never a public object.

Runs against a local S3 server (moto in server mode, with S3's expiry rule for presigned URLs) started here.
"""

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.test import override_settings
from django_scopes import scope

from tests.conftest import clear_cache, host_client
from tests.factories import catalog_item, grant, member
from tests.support.net import free_port, wait_for_port

pytestmark = pytest.mark.django_db
BUCKET = "zhiku-media-test"
CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    script = Path(__file__).parents[1] / "support" / "s3_server.py"
    process = subprocess.Popen([sys.executable, str(script), str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port)
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def _s3_storages(endpoint: str, expire: int) -> dict:
    options = {"bucket_name": BUCKET, "endpoint_url": endpoint, "location": "private", "default_acl": None,
               "querystring_auth": True, "querystring_expire": expire, "signature_version": "s3v4",
               "file_overwrite": False, **CREDENTIALS}
    return {
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
        "private": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_signed_url_is_short_lived_and_only_for_entitled_learners(tenant_a, s3_endpoint):
    clear_cache()
    item = catalog_item(tenant_a, title="Video Lecture", kind="video", price=1900)
    learner = member(tenant_a)
    with override_settings(STORAGES=_s3_storages(s3_endpoint, expire=2)):
        name = storages["private"].save(f"tenants/{tenant_a.pk}/media/lecture.mp4", ContentFile(b"\x00video" * 100))
        with scope(tenant=tenant_a):
            item.media.name = name
            item.save(update_fields=["media"])
        # The object itself is private: no signature, no media.
        status, _ = _get(f"{s3_endpoint}/{BUCKET}/private/{name}")
        assert status == 403, status

        client = host_client("alpha.test", learner)
        assert client.get(f"/item/{item.slug}/media/").status_code == 404  # no entitlement, no URL
        grant(tenant_a, learner, item=item)
        response = client.get(f"/item/{item.slug}/media/")
        assert response.status_code == 302
        signed = response["Location"]
        assert signed.startswith(s3_endpoint) and "X-Amz-Signature=" in signed and "X-Amz-Expires=2" in signed
        assert _get(signed) == (200, b"\x00video" * 100)
        time.sleep(3)
        status, body = _get(signed)
        assert status == 403 and b"Request has expired" in body
