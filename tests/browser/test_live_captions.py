"""The caption line under a player with no picture, in Debian's Chromium: the demo's lectures are WAV files (a
"video" lecture too), over which no browser draws captions, so the cue being spoken is written under the player.
A video with frames keeps the player's own captions and no line."""

import pytest
from django.core.files.base import ContentFile
from django_scopes import scope
from playwright.sync_api import expect

from marketplace.demo_catalog import DEMO_CAPTIONS, wav_bytes, webvtt_bytes
from tests.browser.test_captions import captioned_preview  # noqa: F401 (a fixture: a video with frames)
from tests.browser.test_learning import VIEWPORTS
from tests.factories import TenantFactory, catalog_item

pytestmark = pytest.mark.browser

SECONDS = 4.0  # four cues of a second each
CUES = DEMO_CAPTIONS["en"]


@pytest.fixture
def sound_only_previews(transactional_db):
    """A course whose free previews are the demo's kind of lecture: a "video" that is a WAV file, and an audio one,
    both with the demo's captions and transcript."""
    tenant = TenantFactory(slug="alpha", name="Alpha Academy", domain="alpha.localhost")
    course = catalog_item(tenant, title="Python for Data Analysis", kind="course", price=4900, lessons=3,
                          preview_lessons=2)
    with scope(tenant=tenant):
        previews = list(course.lessons.order_by("position")[:2])
        for lesson, kind in zip(previews, ("video", "audio"), strict=True):
            lesson.kind = kind
            lesson.media.save(f"lecture-{kind}.wav", ContentFile(wav_bytes([220.0, 277.18, 329.63, 440.0],
                                                                           seconds=SECONDS)), save=False)
            lesson.captions.save(f"lecture-{kind}.en.vtt", ContentFile(webvtt_bytes(CUES, seconds=SECONDS)),
                                 save=False)
            lesson.transcript = "\n\n".join(CUES)
            lesson.save()
    return course, previews


@pytest.mark.parametrize(("index", "element"), [(0, "video"), (1, "audio")])
def test_the_caption_being_spoken_shows_under_a_player_without_picture(browser, storefront_url, sound_only_previews,
                                                                       artifacts_dir, index, element):
    course, previews = sound_only_previews
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        page.goto(storefront_url("alpha.localhost", f"/item/{course.slug}/lesson/{previews[index].pk}/"))
        expect(page.locator(f"{element}#player")).to_be_visible()
        line = page.locator("#live-caption")
        expect(line).to_be_visible()  # no frames: the line is there before anything plays
        assert line.get_attribute("aria-live") is None and line.get_attribute("role") is None
        assert line.get_attribute("lang") == "en"

        page.evaluate("document.getElementById('player').play()")
        expect(line).to_have_text(CUES[0])
        expect(line).to_have_text(CUES[1])  # it follows the cues as they change
        # The track still gives its cues, and the player draws nothing itself.
        assert page.evaluate("document.getElementById('player').textTracks[0].mode") == "hidden"
        page.evaluate("document.getElementById('player').pause()")

        # A later cue, at a phone's width: the line wraps inside the screen.
        page.evaluate("document.getElementById('player').currentTime = 2.5")
        expect(line).to_have_text(CUES[2])
        box = line.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORTS["phone"]["width"]
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        size = page.evaluate("parseFloat(getComputedStyle(document.getElementById('live-caption')).fontSize)")
        assert size >= 16
        page.screenshot(path=str(artifacts_dir / f"live-caption-{element}-phone.png"), full_page=True)
    finally:
        context.close()


def test_a_video_with_frames_keeps_the_players_captions_and_no_line(page, storefront_url, captioned_preview):  # noqa: F811
    course, preview = captioned_preview
    page.goto(storefront_url("alpha.localhost", f"/item/{course.slug}/lesson/{preview.pk}/"))
    page.wait_for_function("document.getElementById('player').videoWidth === 160")
    expect(page.locator("#live-caption")).to_be_hidden()
    assert page.evaluate("document.getElementById('player').textTracks[0].mode") == "showing"
