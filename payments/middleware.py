"""Referral links: ``?ref=CODE`` on any storefront page records a touch for the promoter behind the code."""

from __future__ import annotations

import re
import uuid

from django.conf import settings

VISITOR_COOKIE = "zk_visitor"
_TOKEN = re.compile(r"[A-Za-z0-9]+")


def token(value: str, *, max_length: int) -> str:
    """A code or id from a link or a cookie as we make them (letters and digits), else "": anything else is not
    ours and is not looked up."""
    return value if len(value) <= max_length and _TOKEN.fullmatch(value) else ""


def visitor_id(request) -> str:
    return token(request.COOKIES.get(VISITOR_COOKIE, ""), max_length=64)


def remember_visitor(response, visitor: str) -> None:
    """Keep the browser's visitor id for a year, so that a sign-up and a checkout later find its touches."""
    if VISITOR_COOKIE not in response.cookies:
        response.set_cookie(VISITOR_COOKIE, visitor, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                            secure=settings.SESSION_COOKIE_SECURE)


class ReferralMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        code = token(request.GET.get("ref", ""), max_length=16) if request.method == "GET" else ""
        tenant = getattr(request, "tenant", None)
        new_visitor = None
        if code and tenant is not None:
            from .promoters import touch_record

            visitor = visitor_id(request) or uuid.uuid4().hex
            new_visitor = visitor if not visitor_id(request) else None
            touch_record(tenant=tenant, code=code, visitor=visitor, user=request.user, path=request.path)
        response = self.get_response(request)
        if new_visitor:
            remember_visitor(response, new_visitor)
        return response
