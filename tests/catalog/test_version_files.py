"""A published version records its private files (media, captions) by name and SHA-256, so the publication chain's
content hashes cover the files' bytes."""

import hashlib
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django_scopes import scope

from accounts.models import Role
from catalog import services
from catalog.models import ContentItem, FileDigest
from tests.catalog.test_captions import WEBVTT
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db

LECTURE = b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 4000  # about 1 MB: read in more than one chunk


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def publish(tenant, item) -> dict:
    with scope(tenant=tenant):
        services.item_publish_changes(item=ContentItem.objects.get(pk=item.pk), actor=member(tenant, Role.STAFF))
        return item.versions.first().snapshot


def test_a_version_records_the_sha256_of_its_media_and_captions(tenant_a):
    course = catalog_item(tenant_a, title="Course", kind="course", price=4900, lessons=2)
    lecture = catalog_item(tenant_a, title="Lecture", kind="video", price=990)
    with scope(tenant=tenant_a):
        lesson = course.lessons.order_by("position").first()
        lesson.kind = "video"
        lesson.media.save("lesson.webm", ContentFile(LECTURE), save=False)
        lesson.captions.save("lesson.vtt", ContentFile(WEBVTT.encode()), save=False)
        lesson.save()
        lecture.media.save("lecture.webm", ContentFile(LECTURE + b"!"), save=False)
        lecture.save()
    snapshot = publish(tenant_a, course)
    captioned, text = snapshot["lessons"]
    assert (captioned["media_sha256"], captioned["captions_sha256"]) == (sha256(LECTURE), sha256(WEBVTT.encode()))
    assert "media_sha256" not in text and "captions" not in text  # a text lesson has no files
    assert publish(tenant_a, lecture)["media_sha256"] == sha256(LECTURE + b"!")


def test_each_stored_file_is_read_once_and_a_missing_one_does_not_stop_publishing(tenant_a):
    lecture = catalog_item(tenant_a, title="Lecture", kind="audio", price=990)
    with scope(tenant=tenant_a):
        lecture.media.save("lecture.mp3", ContentFile(LECTURE), save=False)
        lecture.save()
    first = publish(tenant_a, lecture)
    # Changed behind the storefront's back: a later version still records the digest of the file as published.
    with storages["private"].open(lecture.media.name, "wb") as stored:
        stored.write(b"tampered")
    assert publish(tenant_a, lecture)["media_sha256"] == first["media_sha256"] == sha256(LECTURE)
    with scope(tenant=tenant_a):
        assert list(FileDigest.objects.values_list("name", "size")) == [(lecture.media.name, len(LECTURE))]
        ContentItem.objects.filter(pk=lecture.pk).update(media=f"tenants/{tenant_a.pk}/media/gone.mp3")
    gone = publish(tenant_a, lecture)
    assert gone["media"].endswith("gone.mp3") and "media_sha256" not in gone


def test_ledger_verify_with_files_finds_a_published_file_changed_or_removed_in_storage(tenant_a, tenant_b):
    lecture = catalog_item(tenant_a, title="Lecture", kind="audio", price=990)
    other = catalog_item(tenant_b, title="Other", kind="audio", price=990)
    for tenant, item in ((tenant_a, lecture), (tenant_b, other)):
        with scope(tenant=tenant):
            item.media.save("lecture.mp3", ContentFile(LECTURE), save=False)
            item.captions.save("lecture.vtt", ContentFile(WEBVTT.encode()), save=False)
            item.save()
        publish(tenant, item)

    def verify(*slugs) -> tuple[int, str]:
        out = StringIO()
        try:
            call_command("ledger_verify", "--files", *[f"--tenant={slug}" for slug in slugs], stdout=out)
        except SystemExit as exit:
            return exit.code, out.getvalue()
        return 0, out.getvalue()

    status, out = verify()
    assert status == 0 and "alpha: published files match their digests" in out
    with storages["private"].open(lecture.media.name, "wb") as stored:
        stored.write(b"tampered")
    storages["private"].delete(lecture.captions.name)
    status, out = verify()
    assert status == 1
    assert f"alpha: {lecture.media.name} is changed since it was published" in out
    assert f"alpha: {lecture.captions.name} is missing since it was published" in out
    assert "beta: published files match their digests" in out  # each storefront checks its own files
    assert verify(tenant_b.slug)[0] == 0
