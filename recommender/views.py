"""The learner's side of the recommender: preferences, goal, tracked links and the digest's unsubscribe."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.models import User
from catalog.models import ContentItem
from marketplace.errors import ApplicationError
from marketplace.views import storefront_only

from . import services
from .digest import recipients, track_read, unsubscribe_read
from .events import event_record
from .forms import GoalForm, PreferenceForm
from .models import EventKind, EventSource, LearnerPreference


@storefront_only
@login_required
def preferences(request):
    preference = services.preference_get(user=request.user)
    form = PreferenceForm(request.POST or None, initial={"personalised": preference.personalised,
                                                         "digest": preference.digest})
    if request.method == "POST" and form.is_valid():
        services.preference_update(user=request.user, personalised=form.cleaned_data["personalised"],
                                   digest=form.cleaned_data["digest"])
        messages.success(request, _("Your recommendation settings are saved."))
        return redirect("recommender:preferences")
    return render(request, "recommender/preferences.html", {"form": form}, status=400 if form.errors else 200)


@storefront_only
@login_required
@require_POST
def goal(request):
    form = GoalForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a goal from the list."))
        return redirect("catalog:my_learning")
    try:
        services.goal_set(user=request.user, **form.goal_objects())
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(reverse("catalog:my_learning") + "#next-in-path")


def _learner(user_id) -> User | None:
    """The learner a digest's link was sent to, or None if they are gone: their account erased or switched off, or
    no longer a learner of this storefront (who gets no digest from it either). Old links stay valid for weeks, and
    must write nothing about someone who is no longer here."""
    membership = recipients().filter(user_id=user_id).select_related("user").first()
    return membership.user if membership is not None else None


@storefront_only
def track(request, token: str):
    """A tracked link from a digest: count the click for the learner it was sent to, then open the item."""
    try:
        payload = track_read(token)
    except signing.BadSignature:
        raise Http404("This link is not valid (any more).") from None
    item = ContentItem.objects.filter(pk=payload["i"]).first()
    user = _learner(payload["u"])
    if item is None:
        raise Http404("No such item.")
    if user is not None:
        event_record(user=user, item=item, kind=EventKind.CLICK, source=payload.get("s", EventSource.DIGEST),
                     context={"placement": "digest"})
    return redirect("catalog:item", slug=item.slug)


@csrf_exempt  # RFC 8058 one-click: the mail client POSTs without a session; the signed token is the authority
@storefront_only
def unsubscribe(request, token: str):
    try:
        payload = unsubscribe_read(token)
    except signing.BadSignature:
        raise ApplicationError(_("This unsubscribe link is not valid."), code="unsubscribe_link_invalid",
                               status=400) from None
    if payload.get("t") != request.tenant.pk:
        raise ApplicationError(_("This unsubscribe link belongs to another storefront."),
                               code="unsubscribe_link_elsewhere", status=400)
    user = _learner(payload["u"])
    if user is None:  # nothing will be sent to an account that is gone, and nothing is written about it
        return render(request, "recommender/unsubscribe.html", {"done": True, "token": token})
    done = False
    if request.method == "POST":
        services.preference_update(user=user, digest=LearnerPreference.Digest.OFF)
        done = True
    return render(request, "recommender/unsubscribe.html", {"done": done, "token": token})
