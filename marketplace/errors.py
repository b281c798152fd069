"""One error type for expected failures, rendered as JSON by the API and as a friendly page by the storefront."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import BadRequest
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import render
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApplicationError(Exception):
    """A failure the caller can understand and act on: ``code`` is stable and machine-readable."""

    status = 400

    def __init__(self, message: str, *, code: str = "invalid", extra: dict[str, Any] | None = None,
                 status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra or {}
        if status is not None:
            self.status = status


class NotFound(ApplicationError):
    status = 404

    def __init__(self, message: str = "Not found.", *, code: str = "not_found", extra=None):
        super().__init__(message, code=code, extra=extra)


def _body(code: str, message: str, extra: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "extra": extra or {}}}


def error_json(exc: ApplicationError) -> JsonResponse:
    """An ApplicationError in the API's shape, for endpoints outside DRF (the player's scripts, provider webhooks)."""
    return JsonResponse(_body(exc.code, exc.message, exc.extra), status=exc.status)


def api_exception_handler(exc, context):
    """DRF handler: every error, ours or DRF's, as ``{"error": {"code", "message", "extra"}}``."""
    if isinstance(exc, ApplicationError):
        if transaction.get_connection().in_atomic_block:
            transaction.set_rollback(True)
        return Response(_body(exc.code, exc.message, exc.extra), status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        response.data = _body("validation_error", "The request has invalid fields.", {"fields": exc.detail})
    else:
        codes = exc.get_codes() if isinstance(exc, drf_exceptions.APIException) else "error"
        detail = exc.detail if isinstance(exc, drf_exceptions.APIException) else str(exc)
        response.data = _body(codes if isinstance(codes, str) else "error", str(detail))
    return response


class ApplicationErrorMiddleware:
    """Storefront views that let an ApplicationError escape show it as a friendly page, or as the API's JSON to a
    script that asked for JSON; nothing is committed."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, ApplicationError):
            return None
        # The page is rendered first: once the transaction is marked for rollback no query may run, and the page
        # reads the signed-in person (not loaded yet if the view raised early) and the storefront's menu.
        if request.headers.get("Accept", "").startswith("application/json"):
            response = error_json(exception)
        else:
            response = render(request, "error.html", {"error": exception}, status=exception.status)
        if transaction.get_connection().in_atomic_block:
            transaction.set_rollback(True)
        return response


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _has_nul(data) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in data.lists())


class NulRejectMiddleware:
    """A NUL character in the path, the query string or a submitted form's fields is refused with 400 before any
    view runs: PostgreSQL cannot hold one in a text value, so a lookup or a save with it would fail with a 500.
    No person types one; it comes from a mangled link or a probe. (Uploaded files' contents are not looked at.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or _has_nul(request.GET):
            raise BadRequest("NUL character in the address")
        if request.method == "POST" and request.content_type in FORM_TYPES and _has_nul(request.POST):
            raise BadRequest("NUL character in the form")
        return self.get_response(request)
