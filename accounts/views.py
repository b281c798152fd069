import json

from allauth.account.internal.flows.login import record_authentication
from allauth.account.utils import perform_login
from allauth.mfa.totp.views import ActivateTOTPView
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from marketplace.errors import ApplicationError
from marketplace.tenancy import TenantLocaleMiddleware
from marketplace.views import storefront_only

from .forms import AccountDeleteForm, InvitationPasswordForm, ProfileForm
from .privacy import user_data_export, user_erase
from .roles import ADMIN_ROLES
from .selectors import email_owner, invitation_get_usable
from .services import invitation_accept, profile_update


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
                # They proved who they are with the link and the password they typed just now: that counts as the
                # fresh password check allauth asks for before setting up two-factor authentication (the admin's first
                # step), so it is not asked for again seconds later.
                record_authentication(request, membership.user, method="password", email=membership.user.email,
                                      reauthenticated=True)
                return perform_login(request, membership.user, redirect_url=target)
            return redirect(target)
    return render(request, "accounts/invitation.html", {
        "invitation": invitation, "form": form, "has_account": owner is not None,
        "wrong_user": request.user.is_authenticated and (owner is None or owner.pk != request.user.pk),
    })


class TotpActivateView(ActivateTOTPView):
    """allauth's authenticator set-up, keeping where the person was going (the admin sends owners and staff here
    first, with ``?next=``). allauth shows the new recovery codes next and forgets that address; the page says where
    to go on once they are saved."""

    NEXT_KEY = "accounts.after_totp"

    def get(self, request, *args, **kwargs):
        target = request.GET.get("next", "")
        if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
            request.session[self.NEXT_KEY] = target
        else:
            request.session.pop(self.NEXT_KEY, None)
        return super().get(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        target = self.request.session.pop(self.NEXT_KEY, "")
        if target:
            messages.info(self.request, format_html(
                '{} <a href="{}">{}</a>', _("Save your recovery codes: they let you in if you lose your "
                                            "authenticator. Then go on:"), target, _("Continue")))
        return response


totp_activate = TotpActivateView.as_view()


@login_required
def profile_view(request):
    user = request.user
    form = ProfileForm(request.POST or None, initial={"display_name": user.display_name, "language": user.language})
    if request.method == "POST" and form.is_valid():
        profile_update(user=user, display_name=form.cleaned_data["display_name"],
                       language=form.cleaned_data["language"])
        # Said in the language the next page speaks, which may be the one just chosen.
        with translation.override(TenantLocaleMiddleware.language_for(request, user)):
            messages.success(request, _("Your profile is saved."))
        return redirect("profile")
    return render(request, "accounts/profile.html", {"form": form}, status=400 if form.errors else 200)


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
@require_http_methods(["GET", "HEAD", "POST"])
def privacy_delete(request):
    if request.method != "POST":
        return redirect("privacy")  # a link or a reload of the refused form: the page where the form is
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
