"""The admin's "Currently" link of media and captions, which live on the private storage: it opens the file for
those who may see the item in the admin, and for no one else."""

import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.urls import reverse
from django_scopes import scope

from accounts.models import Role
from catalog import services
from catalog.models import ContentItem, Lesson
from tests.catalog.test_captions import _change, _lesson_fields
from tests.conftest import host_client, operator_client
from tests.factories import catalog_creator, catalog_item, member

pytestmark = pytest.mark.django_db

MEDIA = b"\x1a\x45\xdf\xa3" + bytes(range(60))
WEBVTT = "WEBVTT\n\n00:00.000 --> 00:01.500\nHello\n"


def _attach(tenant, row, **files) -> None:
    with scope(tenant=tenant):
        if isinstance(row, Lesson):
            row.kind = Lesson.Kind.VIDEO
        for field, (name, data) in files.items():
            getattr(row, field).save(name, ContentFile(data), save=False)
        row.save()


def _current_link(page: str, input_name: str) -> str:
    """The href of the "Currently" line the admin prints above the file input ``input_name``."""
    match = re.search(r'<p class="file-upload">[^<]*<a href="([^"]+)">[^<]*</a>(?:(?!</p>).)*?'
                      rf'<input type="file" name="{re.escape(input_name)}"', page, re.S)
    assert match, f"no current file shown for {input_name}"
    return match.group(1)


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _change_page(client, item) -> str:
    response = client.get(reverse("admin:catalog_contentitem_change", args=[item.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def lecture(tenant_a):
    """A paid video lecture with its media and captions: nothing a visitor could open anyway."""
    item = catalog_item(tenant_a, title="Lecture", kind="video", price=990)
    _attach(tenant_a, item, media=("lecture.webm", MEDIA), captions=("lecture.vtt", WEBVTT.encode()))
    return item


@pytest.fixture
def course(tenant_a):
    item = catalog_item(tenant_a, title="Course", kind="course", price=4900, lessons=1, published=False)
    with scope(tenant=tenant_a):
        lesson = item.lessons.get()
    _attach(tenant_a, lesson, media=("lesson.webm", MEDIA), captions=("lesson.vtt", WEBVTT.encode()))
    return item


@pytest.fixture
def staff(tenant_a):
    return host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))


@pytest.fixture
def other_staff(tenant_b):
    return member(tenant_b, Role.STAFF, mfa=True)


def test_the_item_media_and_captions_links_open_the_files_for_the_team(lecture, staff):
    page = _change_page(staff, lecture)
    media = staff.get(_current_link(page, "media"))
    assert media.status_code == 200
    assert _body(media) == MEDIA and media["Content-Type"] == "video/webm"
    assert "no-store" in media["Cache-Control"]

    captions = staff.get(_current_link(page, "captions"))
    assert captions.status_code == 200
    assert captions.content.decode() == WEBVTT and captions["Content-Type"] == "text/vtt; charset=utf-8"


def test_a_lessons_captions_and_media_links_open_the_files_for_the_team(course, staff):
    page = _change_page(staff, course)
    captions = staff.get(_current_link(page, "lessons-0-captions"))
    assert captions.status_code == 200 and captions.content.decode() == WEBVTT
    media = staff.get(_current_link(page, "lessons-0-media"))
    assert media.status_code == 200 and _body(media) == MEDIA


def test_another_storefronts_staff_gets_nothing(lecture, course, staff, other_staff):
    links = [_current_link(_change_page(staff, lecture), "media"),
             _current_link(_change_page(staff, lecture), "captions"),
             _current_link(_change_page(staff, course), "lessons-0-captions"),
             _current_link(_change_page(staff, course), "lessons-0-media")]
    on_their_own_host = host_client("beta.test", other_staff)
    on_this_host = host_client("alpha.test", other_staff)
    for link in links:
        assert on_their_own_host.get(link).status_code == 404, link
        # Here they have no admin at all: sent to sign in, never the file.
        assert on_this_host.get(link).status_code == 302, link


def test_a_lesson_is_reached_only_through_its_own_item(tenant_a, lecture, course, staff):
    with scope(tenant=tenant_a):
        lesson = course.lessons.get()
    wrong_item = reverse("admin:catalog_contentitem_lesson_file", args=[lecture.pk, lesson.pk, "captions"])
    assert staff.get(wrong_item).status_code == 404
    # Only the private files are served this way, and only those that exist.
    assert staff.get(reverse("admin:catalog_contentitem_file", args=[lecture.pk, "cover"])).status_code == 404
    plain = catalog_item(tenant_a, title="No media", kind="video", price=990)
    assert staff.get(reverse("admin:catalog_contentitem_file", args=[plain.pk, "media"])).status_code == 404


def test_a_creator_opens_the_files_of_their_own_items_only(tenant_a, course):
    ann = member(tenant_a, Role.CREATOR)
    anns = catalog_item(tenant_a, title="Ann's lecture", kind="video", price=990, published=False,
                        creators=[catalog_creator(tenant_a, "Ann", ann)])
    _attach(tenant_a, anns, media=("anns.webm", MEDIA))
    client = host_client("alpha.test", ann)
    assert _body(client.get(_current_link(_change_page(client, anns), "media"))) == MEDIA
    with scope(tenant=tenant_a):
        lesson = course.lessons.get()
    assert client.get(reverse("admin:catalog_contentitem_lesson_file",
                              args=[course.pk, lesson.pk, "media"])).status_code == 404


def test_the_operator_opens_them_from_the_platform_admin(lecture):
    operator = operator_client()
    page = _change_page(operator, lecture)
    assert _body(operator.get(_current_link(page, "media"))) == MEDIA


def test_the_clear_checkbox_and_a_new_upload_still_work(tenant_a, lecture, course, staff):
    page = _change_page(staff, lecture)
    assert 'name="media-clear"' in page and 'name="captions-clear"' in page
    response = _change(staff, lecture, **{"media-clear": "on", "captions_language": "en"})
    assert response.status_code == 302, response.content.decode()[:3000]
    with scope(tenant=tenant_a):
        lecture.refresh_from_db()
    assert not lecture.media and lecture.captions

    with scope(tenant=tenant_a):
        lesson = course.lessons.get()
    upload = ContentFile(b"new lesson media", name="second.webm")
    response = _change(staff, course, [_lesson_fields(lesson, media=upload)])
    assert response.status_code == 302, response.content.decode()[:3000]
    with scope(tenant=tenant_a):
        lesson.refresh_from_db()
    assert storages["private"].open(lesson.media.name).read() == b"new lesson media"
    link = _current_link(_change_page(staff, course), "lessons-0-media")
    assert _body(staff.get(link)) == b"new lesson media"


def test_the_link_is_not_the_private_storages_own_address(lecture, staff):
    with scope(tenant=lecture.tenant):
        stored = ContentItem.objects.get(pk=lecture.pk).media
    link = _current_link(_change_page(staff, lecture), "media")
    assert link == reverse("admin:catalog_contentitem_file", args=[lecture.pk, "media"])
    assert stored.name not in link


def test_an_item_shown_read_only_links_its_files_the_same_way(tenant_a):
    """A creator's item in review is shown to them without inputs: the files are links to the same view."""
    ann = member(tenant_a, Role.CREATOR)
    profile = catalog_creator(tenant_a, "Ann", ann)
    course = catalog_item(tenant_a, title="Ann's course", kind="course", price=4900, lessons=1, published=False,
                          creators=[profile])
    with scope(tenant=tenant_a):
        lesson = course.lessons.get()
    _attach(tenant_a, lesson, media=("lesson.webm", MEDIA), captions=("lesson.vtt", WEBVTT.encode()))
    client = host_client("alpha.test", ann)
    with scope(tenant=tenant_a):
        services.item_submit(item=course, actor=ann)

    page = _change_page(client, course)
    assert 'type="file"' not in page
    links = re.findall(r'<div class="readonly"><a href="([^"]+)">tenants/[^<]*</a></div>', page)
    assert sorted(links) == sorted(reverse("admin:catalog_contentitem_lesson_file", args=[course.pk, lesson.pk, f])
                                   for f in ("media", "captions"))
    assert [_body(client.get(link)) for link in sorted(links)] == [WEBVTT.encode(), MEDIA]

    lecture = catalog_item(tenant_a, title="Ann's lecture", kind="video", price=990, published=False,
                           creators=[profile])
    _attach(tenant_a, lecture, media=("anns.webm", MEDIA))
    with scope(tenant=tenant_a):
        services.item_submit(item=lecture, actor=ann)
    page = _change_page(client, lecture)
    link = re.search(r'<div class="readonly"><a href="([^"]+)">tenants/[^<]*anns[^<]*</a></div>', page).group(1)
    assert link == reverse("admin:catalog_contentitem_file", args=[lecture.pk, "media"])
    assert _body(client.get(link)) == MEDIA
