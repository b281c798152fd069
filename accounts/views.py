import json

from allauth.account.utils import perform_login
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from marketplace.errors import ApplicationError
from marketplace.views import storefront_only

from .forms import AccountDeleteForm, InvitationPasswordForm
from .privacy import user_data_export, user_erase
from .roles import ADMIN_ROLES
from .selectors import email_owner, invitation_get_usable
from .services import invitation_accept


@storefront_only
def invitation_view(request, token: str):
    """Show an invitation and accept it: a new person picks a password, a signed-in one confirms."""
    try:
        invitation = invitation_get_usable(token=token)
    except ApplicationError as error:
        return render(request, "accounts/invitation_error.html", {"error": error}, status=error.status)

    owner = email_owner(email=invitation.email)
    form = InvitationPasswordForm(request.POST or None) if not request.user.is_authenticated else None
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            membership = invitation_accept(
                tenant=request.tenant, token=token,
                user=request.user if request.user.is_authenticated else None,
                password=form.cleaned_data["password1"] if form is not None else None,
            )
        except ApplicationError as exc:
            if form is not None and "fields" in exc.extra:
                for field, errs in exc.extra["fields"].items():
                    form.add_error(field, errs)
            else:
                return render(request, "accounts/invitation_error.html", {"error": exc}, status=exc.status)
        else:
            messages.success(request, _("Welcome to %(name)s.") % {"name": request.tenant.name})
            target = reverse("admin:index" if membership.role in ADMIN_ROLES else "storefront:home")
            if not request.user.is_authenticated:
                return perform_login(request, membership.user, redirect_url=target)
            return redirect(target)
    return render(request, "accounts/invitation.html", {
        "invitation": invitation, "form": form, "has_account": owner is not None,
        "wrong_user": request.user.is_authenticated and (owner is None or owner.pk != request.user.pk),
    })


@login_required
def privacy_view(request):
    return render(request, "accounts/privacy.html", {"delete_form": AccountDeleteForm(user=request.user)})


@login_required
def privacy_export(request):
    data = user_data_export(user=request.user)
    response = HttpResponse(json.dumps(data, ensure_ascii=False, indent=2), content_type="application/json")
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="zhiku-my-data-{stamp}.json"'
    return response


@login_required
@require_POST
def privacy_delete(request):
    form = AccountDeleteForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            user_erase(user=request.user)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            logout(request)
            return render(request, "accounts/deleted.html")
    return render(request, "accounts/privacy.html", {"delete_form": form}, status=400)
