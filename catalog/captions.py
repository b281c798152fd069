"""Captions for video and audio: the WebVTT files a ``<track>`` loads (WCAG 2.1 1.2.2).

An upload is read whole and checked against the W3C WebVTT format before it is stored: UTF-8, an optional byte
order mark, the ``WEBVTT`` signature line, a blank line after the header, and cues whose timing lines are
``[hh:]mm:ss.ttt --> [hh:]mm:ss.ttt`` with minutes and seconds below 60 and an end after the start. Browsers
silently drop a cue they cannot parse, so a file with one is refused with its line number rather than stored with
gaps nobody notices. SubRip (``.srt``), which most transcription services and video editors export, is converted to
WebVTT on upload: it differs in the missing signature and the comma before the milliseconds.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from django import forms
from django.core.files.base import ContentFile
from django.db import models
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

# A two-hour lecture captioned densely in Chinese is a few hundred kilobytes.
CAPTIONS_MAX_BYTES = 1024 * 1024

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SIGNATURE = re.compile(r"^WEBVTT(?:[ \t].*)?$")
_TIMESTAMP = r"(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_TIMING = re.compile(rf"^[ \t]*{_TIMESTAMP}[ \t]*-->[ \t]*{_TIMESTAMP}(?:[ \t]+.*)?$")
# SubRip writes hours always, in one digit or more, and a comma before the milliseconds (some tools a dot).
_SRT_TIMESTAMP = r"(\d{1,}):(\d{2}):(\d{2})[,.](\d{3})"
_SRT_TIMING = re.compile(rf"^[ \t]*{_SRT_TIMESTAMP}[ \t]*-->[ \t]*{_SRT_TIMESTAMP}(.*)$")
_NON_CUE_BLOCK = re.compile(r"^(?:NOTE|STYLE|REGION)(?:[ \t].*)?$")
_NOT_WEBVTT = _("This is not a captions file: a WebVTT file begins with the line “WEBVTT”, a SubRip file with a "
                "cue number and a timing line. Upload captions in WebVTT (.vtt) or SubRip (.srt) format.")


def _seconds(hours: str | None, minutes: str, seconds: str, millis: str) -> int:
    """A timestamp in milliseconds."""
    return ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)


def _error(message, line: int) -> forms.ValidationError:
    return forms.ValidationError(message, code="invalid_captions", params={"line": line})


def _too_large() -> forms.ValidationError:
    return forms.ValidationError(_("A captions file can be at most %(limit)s."), code="captions_too_large",
                                 params={"limit": filesizeformat(CAPTIONS_MAX_BYTES)})


def _check_webvtt(lines: list[str], *, first_line: int = 1) -> None:
    """Check WebVTT ``lines`` (the signature first); ``first_line`` is the number the uploaded file gives
    ``lines[0]``, for the errors (a converted SubRip file has two lines more than the upload)."""
    if not lines or not _SIGNATURE.match(lines[0]):
        raise forms.ValidationError(_NOT_WEBVTT, code="not_webvtt")
    index = 1
    while index < len(lines) and lines[index].strip():  # the header's other lines
        if "-->" in lines[index]:
            raise _error(_("Line %(line)s: leave a blank line between the “WEBVTT” line and the first cue."),
                         first_line + index)
        index += 1
    cues = False
    while index < len(lines):
        if not lines[index].strip():
            index += 1
            continue
        start = index
        while index < len(lines) and lines[index].strip():
            index += 1
        block = lines[start:index]
        timing = next((i for i, line in enumerate(block[:2]) if "-->" in line), None)
        if timing is None and _NON_CUE_BLOCK.match(block[0]):
            continue  # a comment, a style sheet or a region definition
        if timing is None:
            raise _error(_("Line %(line)s: a cue needs a timing line such as “00:01:02.500 --> 00:01:05.000”."),
                         first_line + start + min(1, len(block) - 1))
        match = _TIMING.match(block[timing])
        if match is None:
            raise forms.ValidationError(
                _("Line %(line)s: “%(timing)s” is not a valid cue timing: write “hh:mm:ss.ttt --> hh:mm:ss.ttt” or "
                  "“mm:ss.ttt --> mm:ss.ttt”, with minutes and seconds below 60 and three digits of milliseconds "
                  "after a dot."), code="invalid_captions",
                params={"line": first_line + start + timing, "timing": block[timing].strip()[:80]})
        if _seconds(*match.groups()[4:]) <= _seconds(*match.groups()[:4]):
            raise _error(_("Line %(line)s: a cue must end after it starts."), first_line + start + timing)
        for offset, text in enumerate(block[timing + 1:], timing + 1):
            if "-->" in text:
                raise _error(_("Line %(line)s: a cue's text cannot contain “-->”; leave a blank line between "
                               "cues."), first_line + start + offset)
        cues = True
    if not cues:
        raise forms.ValidationError(_("This captions file has no cues: add at least one timed caption."),
                                    code="no_cues")


def _from_subrip(lines: list[str]) -> list[str] | None:
    """The WebVTT lines of SubRip ``lines``, or None when they are not SubRip (no SubRip timing line in the first
    cue)."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or not any(_SRT_TIMING.match(line) for line in lines[first:first + 2]):
        return None

    def timestamp(hours: str, minutes: str, seconds: str, millis: str) -> str:
        return f"{int(hours):02d}:{minutes}:{seconds}.{millis}"

    converted = []
    for line in lines:
        match = _SRT_TIMING.match(line)
        if match:
            groups = match.groups()
            # SubRip's position hints (X1:… Y2:…) mean nothing to WebVTT; its <i>, <b> and <u> tags carry over.
            line = f"{timestamp(*groups[:4])} --> {timestamp(*groups[4:8])}"
        converted.append(line)
    return ["WEBVTT", "", *converted]


def captions_read(data: bytes) -> bytes:
    """The WebVTT file to store for uploaded captions ``data`` (WebVTT, or SubRip converted to it).

    Raises ``forms.ValidationError`` saying what is wrong, with the line number where there is one.
    """
    if len(data) > CAPTIONS_MAX_BYTES:
        raise _too_large()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise forms.ValidationError(
            _("Line %(line)s is not UTF-8 text: save the captions as UTF-8 (editors call it “UTF-8” or “Unicode”) "
              "and upload them again."), code="not_utf8",
            params={"line": data[:exc.start].count(b"\n") + 1}) from exc
    text = text.removeprefix("\ufeff")
    lines = _LINE_BREAK.split(text)
    if lines and _SIGNATURE.match(lines[0]):
        _check_webvtt(lines)
        return data
    converted = _from_subrip(lines)
    if converted is None:
        raise forms.ValidationError(_NOT_WEBVTT, code="not_webvtt")
    _check_webvtt(converted, first_line=-1)  # its first cue is line 1 of the upload
    return ("\n".join(converted).rstrip("\n") + "\n").encode()


class CaptionsFormField(forms.FileField):
    """An upload of captions, checked and (from SubRip) converted: its cleaned value is the WebVTT file to store."""

    def widget_attrs(self, widget):
        return {**super().widget_attrs(widget), "accept": ".vtt,.srt,text/vtt"}

    def clean(self, data, initial=None):
        upload = super().clean(data, initial)
        if not upload or upload is initial or getattr(upload, "_committed", False):
            return upload  # nothing new: no file, the stored one kept, or cleared
        if upload.size is not None and upload.size > CAPTIONS_MAX_BYTES:
            raise _too_large()  # before reading a file that would not fit anyway
        upload.seek(0)
        webvtt = captions_read(upload.read(CAPTIONS_MAX_BYTES + 1))
        return ContentFile(webvtt, name=f"{PurePath(upload.name).stem or 'captions'}.vtt")


class CaptionsField(models.FileField):
    """A private WebVTT file; forms built from it check uploads with ``CaptionsFormField``."""

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": CaptionsFormField, **kwargs})
