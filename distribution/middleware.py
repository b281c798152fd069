"""Tracked links: ``?zc=CODE`` on a storefront page records a visit through that distribution channel."""

from __future__ import annotations

import uuid

from payments.middleware import VISITOR_COOKIE, remember_visitor, token, visitor_id

from .models import TRACKING_PARAM


class ChannelClickMiddleware:
    """Counts the visit for the channel (its exposure where the platform reports none) and remembers the browser, so
    that a sign-up and a checkout later are attributed to the channel."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        code = token(request.GET.get(TRACKING_PARAM, ""), max_length=16) if request.method == "GET" else ""
        tenant = getattr(request, "tenant", None)
        new_visitor = None
        if code and tenant is not None:
            from .services import click_record

            visitor = visitor_id(request) or uuid.uuid4().hex
            new_visitor = visitor if not visitor_id(request) else None
            request.COOKIES[VISITOR_COOKIE] = visitor  # the rest of this request (a referral touch) sees it too
            click_record(code=code, visitor=visitor, user=request.user, path=request.path)
        response = self.get_response(request)
        if new_visitor:
            remember_visitor(response, new_visitor)
        return response
