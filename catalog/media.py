"""Handing out paid media and its captions after the access check.

On S3 the answer is a redirect to a short-lived signed URL of the private object. On local storage the file is
streamed here, honouring a single HTTP ``Range`` (browsers seek in audio and video that way and need 206 replies).
Captions are always answered here (see ``captions_response``).
"""

from __future__ import annotations

import mimetypes
import re

from django.http import FileResponse, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import content_disposition_header

from .storage import private_storage

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# A position with more digits lies past the end of any file; Python refuses to read numbers of over 4300 digits.
_POSITION_DIGITS = 18
CHUNK = 64 * 1024
# What a browser may show in the page: media players, PDF and raster images. Anything else a creator uploaded (an
# HTML page, an SVG, a script) is served as a download of unknown type, so it never runs on the storefront's host,
# where the team's admin also lives.
_INLINE = re.compile(r"^(audio/|video/|image/(png|jpeg|gif|webp|avif)$|application/pdf$|application/epub\+zip$)")


def _is_remote(storage) -> bool:
    return storage.__class__.__module__.startswith("storages.")


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _POSITION_DIGITS else 10**_POSITION_DIGITS


def _stream(fh, start: int, length: int):
    try:
        fh.seek(start)
        while length > 0:
            chunk = fh.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        fh.close()


def media_response(request, name: str, *, download_name: str | None = None) -> HttpResponse:
    """Serve private file ``name``: the caller has already checked access."""
    storage = private_storage().backend
    if _is_remote(storage):
        response = HttpResponseRedirect(storage.url(name))
        response["Cache-Control"] = "private, no-store"
        return response
    size = storage.size(name)
    content_type = mimetypes.guess_type(name)[0] or ""
    if not _INLINE.match(content_type):
        content_type, download_name = "application/octet-stream", download_name or name.rsplit("/", 1)[-1]
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if match and (match.group(1) or match.group(2)):
        first, last = match.groups()
        if first:
            start, end = _position(first), min(_position(last), size - 1) if last else size - 1
        else:  # "bytes=-N": the last N bytes
            start, end = max(0, size - _position(last)), size - 1
        if start >= size or start > end:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        response = StreamingHttpResponse(_stream(storage.open(name, "rb"), start, end - start + 1), status=206,
                                         content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
        if download_name is not None:
            response["Content-Disposition"] = content_disposition_header(True, download_name)
    else:
        response = FileResponse(storage.open(name, "rb"), content_type=content_type,
                                as_attachment=download_name is not None, filename=download_name or "")
        response["Content-Length"] = str(size)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def captions_response(name: str) -> HttpResponse:
    """Serve the WebVTT captions file ``name``: the caller has already checked access.

    Unlike media, captions are answered from this host on S3 too, not by a redirect to a signed URL: a browser fetches
    a ``<track>`` in same-origin mode unless its player is marked ``crossorigin`` (and the bucket then sends CORS
    headers), so a redirect to the bucket loads no captions. Uploads are checked to be small WebVTT files
    (``catalog.captions``), which pass through cheaply.
    """
    with private_storage().open(name, "rb") as fh:
        body = fh.read()
    response = HttpResponse(body, content_type="text/vtt; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
