"""Captions and transcripts for video and audio (WCAG 2.1 1.2.1-1.2.3): what the admin accepts, who may read the
captions, and what the player shows."""

import pytest
from django import forms
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.test import override_settings
from django.urls import reverse
from django_scopes import scope

from accounts.models import Role
from catalog.captions import CAPTIONS_MAX_BYTES, captions_read
from catalog.models import Lesson
from tests.catalog.test_media_s3 import _s3_storages, s3_endpoint  # noqa: F401 (a fixture)
from tests.conftest import host_client
from tests.factories import catalog_item, grant, member, typed_price

pytestmark = pytest.mark.django_db

WEBVTT = "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nWelcome to the lecture.\n\n00:01.500 --> 00:03.000\n欢迎来到课堂。\n"
SUBRIP = ("1\r\n00:00:01,000 --> 00:00:02,500 X1:40 X2:600\r\nHello\r\n\r\n"
          "2\r\n0:00:03,000 --> 0:00:04,000\r\n<i>world</i>\r\n")


def _refusal(data: bytes) -> forms.ValidationError:
    with pytest.raises(forms.ValidationError) as refused:
        captions_read(data)
    return refused.value


# --- what a captions file must be ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    WEBVTT.encode(),
    b"\xef\xbb\xbf" + WEBVTT.encode(),  # a byte order mark, as Windows editors write
    WEBVTT.replace("\n", "\r\n").encode(),
    WEBVTT.replace("\n", "\r").encode(),
    (b"WEBVTT - Lecture 1\nKind: captions\n\nNOTE checked by the editor\n\nSTYLE\n::cue { color: yellow }\n\n"
     b"intro\n00:00.000\t-->\t00:01.000 align:start line:0\n<v Lin>Hello</v>\n\n"
     b"100:00:00.000 --> 100:00:01.000\nAfter a long day\n"),
])
def test_webvtt_that_browsers_read_is_stored_as_uploaded(data):
    assert captions_read(data) == data


def test_subrip_is_converted_to_webvtt():
    assert captions_read(SUBRIP.encode()).decode() == (
        "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.500\nHello\n\n2\n00:00:03.000 --> 00:00:04.000\n<i>world</i>\n")


@pytest.mark.parametrize(("data", "code", "says"), [
    ("WEBVTT\n\n00:00.000 --> 00:01.000\n你好\n".encode("gbk"), "not_utf8", "Line 4 is not UTF-8"),
    (b"Welcome to the lecture.\n", "not_webvtt", "begins with the line \u201cWEBVTT\u201d"),
    (b"WEBVTTX\n\n00:00.000 --> 00:01.000\nHello\n", "not_webvtt", "WEBVTT"),
    (b"<html><body>not captions</body></html>", "not_webvtt", "WebVTT (.vtt) or SubRip (.srt)"),
    (b"WEBVTT\n00:00.000 --> 00:01.000\nHello\n", "invalid_captions", "Line 2: leave a blank line"),
    (b"WEBVTT\n\n00:00,000 --> 00:01.000\nHello\n", "invalid_captions", "Line 3: \u201c00:00,000 --> 00:01.000\u201d"),
    (b"WEBVTT\n\n00:00:60.000 --> 00:01:01.000\nHello\n", "invalid_captions", "Line 3:"),
    (b"WEBVTT\n\n1\n0:00:01.000 --> 0:00:02.000\nHello\n", "invalid_captions", "Line 4:"),
    (b"WEBVTT\n\n00:00.000 --> 00:01.00\nHello\n", "invalid_captions", "Line 3:"),
    (b"WEBVTT\n\n00:02.000 --> 00:01.000\nHello\n", "invalid_captions", "Line 3: a cue must end after it starts"),
    (b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n00:01.000 --> 00:02.000\nWorld\n", "invalid_captions",
     "Line 5: a cue's text cannot contain"),
    (b"WEBVTT\n\nintro\nHello without a time\n", "invalid_captions", "Line 4: a cue needs a timing line"),
    (b"WEBVTT\n\nNOTE nothing timed yet\n", "no_cues", "no cues"),
    (b"WEBVTT\n", "no_cues", "no cues"),
    # SubRip errors name the line of the uploaded file, not of the converted one.
    (b"1\n00:00:01,000 --> 00:00:02,500\nHello\n\n2\n00:00:03,000 -> 00:00:04,000\nWorld\n",
     "invalid_captions", "Line 6: a cue needs a timing line"),
])
def test_broken_captions_are_refused_saying_where(data, code, says):
    refusal = _refusal(data)
    assert refusal.code == code
    assert says in refusal.messages[0]


def test_captions_past_the_size_limit_are_refused():
    cue = "00:00:00.000 --> 00:00:01.000\nHello\n\n"
    data = ("WEBVTT\n\n" + cue * (CAPTIONS_MAX_BYTES // len(cue) + 1)).encode()
    assert _refusal(data).code == "captions_too_large"


# --- attaching them in the admin ----------------------------------------------------------------------------------

def _change(client, item, lessons=(), **changes):
    """Post the item's change form as the admin shows it, with ``lessons`` (dicts of a lesson's fields)."""
    data = {
        "kind": item.kind, "title": item.title, "subtitle": item.subtitle, "slug": item.slug,
        "language": item.language, "level": item.level, "price": typed_price(item), "description": item.description,
        "cover_alt": "", "duration_minutes": 0, "body": item.body, "external_id": "", "join_url": "",
        "starts_at_0": "", "starts_at_1": "", "captions_language": "", "transcript": "",
        "item_creators-TOTAL_FORMS": 0, "item_creators-INITIAL_FORMS": 0,
        "sections-TOTAL_FORMS": 0, "sections-INITIAL_FORMS": 0,
        "lessons-TOTAL_FORMS": len(lessons), "lessons-INITIAL_FORMS": len(lessons),
    }
    for index, lesson in enumerate(lessons):
        data.update({f"lessons-{index}-{name}": value for name, value in lesson.items()})
    data.update(changes)
    return client.post(reverse("admin:catalog_contentitem_change", args=[item.pk]), data)


def _lesson_fields(lesson: Lesson, **changes) -> dict:
    fields = {"id": lesson.pk, "item": lesson.item_id, "section": lesson.section_id, "kind": lesson.kind,
              "position": lesson.position, "title": lesson.title, "body": lesson.body,
              "duration_seconds": lesson.duration_seconds, "captions_language": "", "transcript": ""}
    if lesson.is_preview:
        fields["is_preview"] = "on"
    return {**fields, **changes}


@pytest.fixture
def owner(tenant_a):
    return host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))


def test_the_team_attaches_subrip_captions_and_a_transcript_to_a_video_lesson(tenant_a, owner):
    course = catalog_item(tenant_a, title="Course", kind="course", price=4900, lessons=1)
    with scope(tenant=tenant_a):
        lesson = course.lessons.get()
    upload = ContentFile(SUBRIP.encode(), name="lesson one.srt")
    lesson_fields = _lesson_fields(lesson, kind="video", captions=upload, captions_language="zh-hans",
                                   transcript="Hello\n\nworld")
    response = _change(owner, course, [lesson_fields])
    assert response.status_code == 302, response.content.decode()[:3000]
    with scope(tenant=tenant_a):
        lesson.refresh_from_db()
    # Stored privately, as WebVTT, beside the storefront's other private files.
    assert lesson.captions.name.startswith(f"tenants/{tenant_a.pk}/captions/") and lesson.captions.name.endswith(".vtt")
    assert storages["private"].open(lesson.captions.name).read().decode().startswith("WEBVTT\n\n1\n00:00:01.000 -->")
    assert (lesson.captions_language, lesson.transcript) == ("zh-hans", "Hello\n\nworld")


def test_a_broken_captions_file_is_refused_next_to_its_field(tenant_a, owner):
    lecture = catalog_item(tenant_a, title="Lecture", kind="video", price=990)
    upload = ContentFile("WEBVTT\n\n00:00.000 --> 00:01.000\n你好\n".encode("gbk"), name="lecture.vtt")
    response = _change(owner, lecture, captions=upload)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Line 4 is not UTF-8 text" in page
    # Django's admin prints a field's errors in the row of that field.
    row = page[page.index('class="form-row field-captions'):]
    assert row.index("Line 4 is not UTF-8 text") < row.index('name="captions"')
    with scope(tenant=lecture.tenant):
        lecture.refresh_from_db()
    assert not lecture.captions


def test_captions_and_transcripts_are_refused_where_nothing_plays(tenant_a, owner):
    article = catalog_item(tenant_a, title="Article", kind="article", body="Words")
    response = _change(owner, article, captions=ContentFile(WEBVTT.encode(), name="a.vtt"), transcript="Spoken")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Only video and audio have captions" in page and "Only video and audio have a transcript" in page

    course = catalog_item(tenant_a, title="Course", kind="course", lessons=1)
    with scope(tenant=tenant_a):
        lesson = course.lessons.get()
    response = _change(owner, course, [_lesson_fields(lesson, captions=ContentFile(WEBVTT.encode(), name="a.vtt"))])
    assert response.status_code == 200
    assert "Only video and audio have captions" in response.content.decode()
    with scope(tenant=tenant_a):
        lesson.refresh_from_db()
    assert not lesson.captions


# --- who may read them --------------------------------------------------------------------------------------------

def _give_captions(tenant, row, *, kind: str, transcript: str = "") -> None:
    with scope(tenant=tenant):
        if isinstance(row, Lesson):
            row.kind = kind
        row.media.save(f"lecture-{row.pk}.webm", ContentFile(b"\x1a\x45\xdf\xa3" + bytes(60)), save=False)
        row.captions.save(f"lecture-{row.pk}.vtt", ContentFile(WEBVTT.encode()), save=False)
        row.transcript = transcript
        row.save()


def test_captions_are_served_to_whoever_may_play_the_media(tenant_a):
    lecture = catalog_item(tenant_a, title="Lecture", kind="video", price=990)
    _give_captions(tenant_a, lecture, kind="video")
    url = reverse("catalog:item_captions", args=[lecture.slug])
    learner = member(tenant_a)
    assert host_client("alpha.test").get(url).status_code == 404
    assert host_client("alpha.test", learner).get(url).status_code == 404

    grant(tenant_a, learner, item=lecture)
    response = host_client("alpha.test", learner).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/vtt; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff" and "no-store" in response["Cache-Control"]
    assert response.content.decode() == WEBVTT
    uncaptioned = catalog_item(tenant_a, title="Without captions", kind="video", price=0)
    assert host_client("alpha.test", learner).get(
        reverse("catalog:item_captions", args=[uncaptioned.slug])).status_code == 404


def test_a_free_preview_lessons_captions_are_open_like_its_media(tenant_a):
    course = catalog_item(tenant_a, title="Course", kind="course", price=4900, lessons=2, preview_lessons=1)
    with scope(tenant=tenant_a):
        preview, paid = course.lessons.order_by("position")
    _give_captions(tenant_a, preview, kind="video")
    _give_captions(tenant_a, paid, kind="audio")
    visitor = host_client("alpha.test")
    preview_url = reverse("catalog:lesson_captions", args=[course.slug, preview.pk])
    paid_url = reverse("catalog:lesson_captions", args=[course.slug, paid.pk])
    assert visitor.get(preview_url).status_code == 200
    assert visitor.get(paid_url).status_code == 404

    learner = member(tenant_a)
    grant(tenant_a, learner, item=course)
    response = host_client("alpha.test", learner).get(paid_url)
    assert response.status_code == 200 and response["Content-Type"] == "text/vtt; charset=utf-8"


def test_another_storefronts_captions_are_not_served_here(tenant_a, tenant_b):
    theirs = catalog_item(tenant_a, title="Course", kind="course", price=0, lessons=1, preview_lessons=1,
                          slug="shared-slug")
    with scope(tenant=tenant_a):
        their_lesson = theirs.lessons.get()
    _give_captions(tenant_a, their_lesson, kind="video")
    # This storefront has a free course at the same address: the other storefront's lesson is still not its own.
    catalog_item(tenant_b, title="Course", kind="course", price=0, lessons=1, slug="shared-slug")
    beta = host_client("beta.test", member(tenant_b, Role.OWNER, mfa=True))
    assert beta.get(f"/item/shared-slug/lesson/{their_lesson.pk}/captions/").status_code == 404
    assert host_client("alpha.test").get(f"/item/shared-slug/lesson/{their_lesson.pk}/captions/").status_code == 200

    lecture = catalog_item(tenant_a, title="Lecture", kind="video", price=0)
    _give_captions(tenant_a, lecture, kind="video")
    assert beta.get(f"/item/{lecture.slug}/captions/").status_code == 404
    assert host_client("alpha.test").get(f"/item/{lecture.slug}/captions/").status_code == 200


def test_captions_on_s3_are_answered_from_the_storefronts_host(tenant_a, s3_endpoint):  # noqa: F811
    """A ``<track>`` loads only from the page's origin (or with CORS), so captions are not a redirect to the bucket."""
    lecture = catalog_item(tenant_a, title="Lecture", kind="video", price=990)
    learner = member(tenant_a)
    with override_settings(STORAGES=_s3_storages(s3_endpoint, expire=60)):
        name = storages["private"].save(f"tenants/{tenant_a.pk}/captions/lecture.vtt", ContentFile(WEBVTT.encode()))
        with scope(tenant=tenant_a):
            lecture.captions.name = name
            lecture.save(update_fields=["captions"])
        client = host_client("alpha.test", learner)
        assert client.get(f"/item/{lecture.slug}/captions/").status_code == 404
        grant(tenant_a, learner, item=lecture)
        response = client.get(f"/item/{lecture.slug}/captions/")
        assert response.status_code == 200
        assert response["Content-Type"] == "text/vtt; charset=utf-8"
        assert response.content.decode() == WEBVTT


# --- what the player shows ----------------------------------------------------------------------------------------

def test_the_player_loads_the_captions_and_shows_the_transcript(tenant_a):
    course = catalog_item(tenant_a, title="Course", kind="course", price=0, lessons=3, language="en")
    with scope(tenant=tenant_a):
        video, audio, plain = course.lessons.order_by("position")
    _give_captions(tenant_a, video, kind="video", transcript="Welcome to the lecture.\n\nToday: <b>pandas</b>.")
    _give_captions(tenant_a, audio, kind="audio", transcript="An audio lesson, read.")
    with scope(tenant=tenant_a):
        audio.captions_language = "zh-hans"
        audio.save(update_fields=["captions_language"])
        plain.kind = "video"
        plain.media.save("plain.webm", ContentFile(b"\x1a\x45\xdf\xa3"), save=True)
    client = host_client("alpha.test")

    page = client.get(reverse("catalog:lesson", args=[course.slug, video.pk])).content.decode()
    track = (f'<track kind="captions" src="/item/{course.slug}/lesson/{video.pk}/captions/" srclang="en" '
             f'label="English" default>')
    assert f"{track}</video>" in page
    # Under the player, as plain text: markup in it is shown, never run.
    assert "<details class=\"transcript\"><summary" in page and ">Transcript</summary>" in page
    assert "<p>Welcome to the lecture.</p>" in page and "Today: &lt;b&gt;pandas&lt;/b&gt;." in page
    assert page.index("</video>") < page.index("<details")

    page = client.get(reverse("catalog:lesson", args=[course.slug, audio.pk])).content.decode()
    assert (f'<track kind="captions" src="/item/{course.slug}/lesson/{audio.pk}/captions/" srclang="zh-hans" '
            f'label="简体中文" default></audio>') in page
    assert "An audio lesson, read." in page

    page = client.get(reverse("catalog:lesson", args=[course.slug, plain.pk])).content.decode()
    assert "<video" in page and "<track" not in page and "Transcript" not in page


def test_an_items_own_lecture_gets_its_captions_too(tenant_a):
    lecture = catalog_item(tenant_a, title="Lecture", kind="audio", price=0, language="zh-hans")
    _give_captions(tenant_a, lecture, kind="audio", transcript="讲座全文。")
    page = host_client("alpha.test").get(reverse("catalog:learn", args=[lecture.slug])).content.decode()
    assert (f'<track kind="captions" src="/item/{lecture.slug}/captions/" srclang="zh-hans" label="简体中文" '
            f'default></audio>') in page
    assert "讲座全文。" in page


def test_captions_and_the_transcript_are_part_of_the_published_version(tenant_a):
    """The version's snapshot (what distribution pushes and the publication chain hashes) records them, so
    publishing a corrected transcript is a new version on record, and the chain still verifies."""
    from io import StringIO

    from django.core.management import call_command

    from catalog import services

    course = catalog_item(tenant_a, title="Course", kind="course", price=4900, lessons=1)
    lecture = catalog_item(tenant_a, title="Lecture", kind="audio", price=990)
    with scope(tenant=tenant_a):
        lesson = course.lessons.get()
    _give_captions(tenant_a, lesson, kind="video", transcript="Welcome.")
    _give_captions(tenant_a, lecture, kind="audio", transcript="Hello.")
    staff = member(tenant_a, Role.STAFF)
    with scope(tenant=tenant_a):
        first = course.versions.get()
        services.item_publish_changes(item=course, actor=staff)
        second = course.versions.first()
        lesson.transcript = "Welcome to the lecture."
        lesson.save()
        services.item_publish_changes(item=course, actor=staff)
        third = course.versions.first()
        services.item_publish_changes(item=lecture, actor=staff)
        lecture_version = lecture.versions.first()
    assert "captions" not in first.snapshot["lessons"][0]
    captioned = {key: second.snapshot["lessons"][0][key] for key in ("captions", "captions_language", "transcript")}
    assert captioned == {"captions": lesson.captions.name, "captions_language": "", "transcript": "Welcome."}
    assert third.snapshot["lessons"][0]["transcript"] == "Welcome to the lecture."
    assert len({first.content_hash, second.content_hash, third.content_hash}) == 3
    assert (lecture_version.snapshot["captions"], lecture_version.snapshot["transcript"]) == (
        lecture.captions.name, "Hello.")
    out = StringIO()
    call_command("ledger_verify", tenant_slugs=[tenant_a.slug], stdout=out)
    assert out.getvalue().startswith("alpha: 5 entries verify;")  # five publications, chained
