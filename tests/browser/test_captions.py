"""Captions in Debian's Chromium: a video lesson's ``<track>`` loads its WebVTT cues through the checked captions
view, and the transcript opens under the player.

The video is a real WebM that Chromium itself records from a canvas (MediaRecorder), so nothing is downloaded and no
encoder is needed on the machine.
"""

import base64

import pytest
from django.core.files.base import ContentFile
from django_scopes import scope
from playwright.sync_api import expect

from tests.factories import TenantFactory, catalog_item

pytestmark = pytest.mark.browser

CAPTIONS = ("WEBVTT\n\n00:00:00.000 --> 00:00:00.800\nWelcome to the lecture.\n\n"
            "00:00:00.800 --> 00:00:01.500\n欢迎来到课堂。\n")

RECORD_WEBM = """() => new Promise((resolve) => {
  const canvas = document.createElement("canvas");
  canvas.width = 160;
  canvas.height = 90;
  const context = canvas.getContext("2d");
  const recorder = new MediaRecorder(canvas.captureStream(10), {mimeType: "video/webm"});
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = async () => {
    const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
    let binary = "";
    for (const byte of bytes) binary += String.fromCharCode(byte);
    resolve(btoa(binary));
  };
  let frame = 0;
  const draw = () => { context.fillStyle = frame++ % 2 ? "#0f766e" : "#f59e0b"; context.fillRect(0, 0, 160, 90); };
  draw();
  const timer = setInterval(draw, 100);
  recorder.start();
  setTimeout(() => { clearInterval(timer); recorder.stop(); }, 1500);
})"""


def _recorded_webm(browser) -> bytes:
    """About 1.5 s of 160×90 VP8 video, recorded by Chromium."""
    context = browser.new_context()
    try:
        return base64.b64decode(context.new_page().evaluate(RECORD_WEBM))
    finally:
        context.close()


@pytest.fixture
def captioned_preview(transactional_db, browser):
    tenant = TenantFactory(slug="alpha", name="Alpha Academy", domain="alpha.localhost")
    course = catalog_item(tenant, title="Python for Data Analysis", kind="course", price=4900, lessons=2,
                          preview_lessons=1)
    with scope(tenant=tenant):
        preview = course.lessons.order_by("position").first()
        preview.kind = "video"
        preview.media.save("preview.webm", ContentFile(_recorded_webm(browser)), save=False)
        preview.captions.save("preview.vtt", ContentFile(CAPTIONS.encode()), save=False)
        preview.transcript = "Welcome to the lecture. Today we load a table with pandas."
        preview.save()
    return course, preview


def test_a_free_previews_captions_load_into_the_video_and_its_transcript_opens(page, storefront_url,
                                                                               captioned_preview, artifacts_dir):
    course, preview = captioned_preview
    # Someone who has not bought the course, on a free preview: its captions are open like its video.
    page.goto(storefront_url("alpha.localhost", f"/item/{course.slug}/lesson/{preview.pk}/"))
    video = page.locator("video#player")
    expect(video).to_be_visible()
    page.wait_for_function("document.getElementById('player').videoWidth === 160")  # a real, decoded video

    track = page.evaluate("""() => {
      const track = document.getElementById("player").textTracks[0];
      track.mode = "showing";
      return {kind: track.kind, language: track.language, label: track.label};
    }""")
    assert track == {"kind": "captions", "language": "en", "label": "English"}
    page.wait_for_function("""() => {
      const cues = document.getElementById("player").textTracks[0].cues;
      return cues !== null && cues.length > 0;
    }""")
    cues = page.evaluate("""() => Array.from(document.getElementById("player").textTracks[0].cues,
                                          (cue) => [cue.startTime, cue.endTime, cue.text])""")
    assert cues == [[0, 0.8, "Welcome to the lecture."], [0.8, 1.5, "欢迎来到课堂。"]]
    assert page.evaluate("document.querySelector('#player track').readyState") == 2  # HTMLTrackElement.LOADED
    # At 0.3 s the first caption is the one on screen.
    page.evaluate("document.getElementById('player').currentTime = 0.3")
    page.wait_for_function("""() => {
      const active = document.getElementById("player").textTracks[0].activeCues;
      return active !== null && active.length === 1 && active[0].text === "Welcome to the lecture.";
    }""")

    transcript = page.locator("details.transcript")
    expect(transcript.get_by_text("Today we load a table with pandas.")).to_be_hidden()
    transcript.get_by_text("Transcript").click()
    expect(transcript.get_by_text("Today we load a table with pandas.")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "lesson-captions-desktop.png"), full_page=True)
