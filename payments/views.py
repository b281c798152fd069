"""Checkout on the storefront, the sandbox provider's hosted page, provider webhooks, and the learner's orders."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.adapter import return_after_email_confirmed
from accounts.selectors import user_can_buy
from catalog.models import Bundle, ContentItem
from marketplace.errors import ApplicationError, error_json
from marketplace.views import storefront_only

from . import services
from .middleware import visitor_id
from .models import Order, Payment, Subscription, SubscriptionPlan
from .selectors import bundle_owned_part, promoter_sales
from .subscriptions import MINIMUM_GRACE, renewal_pay, subscription_cancel, subscription_resume, subscription_switch


class CheckoutForm(forms.Form):
    coupon = forms.CharField(label=gettext_lazy("Coupon code"), required=False, max_length=40)
    referral = forms.CharField(label=gettext_lazy("Referral code (optional)"), required=False, max_length=16)
    key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args, conf, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.promoters_enabled = conf.promoters_enabled
        self.buyer = None if conf.self_referral_allowed else user  # whose own code earns nothing here
        if not self.promoters_enabled:  # no programme: a code would credit nobody, so none is asked for
            del self.fields["referral"]

    def clean_referral(self):
        """A code that credits nobody (mistyped, its promoter no longer earns, or the buyer's own where the
        storefront pays no commission on a promoter's own purchases) is refused, as a coupon is: the learner would
        otherwise pay believing someone is credited."""
        from .promoters import promoter_for_code

        code = self.cleaned_data["referral"].strip()
        promoter = promoter_for_code(code=code) if code else None
        if code and promoter is None:
            raise forms.ValidationError(_("No promoter has this referral code: check it, or leave the field empty."),
                                        code="referral_invalid")
        if promoter is not None and self.buyer is not None and promoter.user_id == self.buyer.pk:
            raise forms.ValidationError(_("This is your own referral code: your own purchases earn you no "
                                          "commission here. Leave the field empty."), code="referral_own")
        return code


def _target(request):
    """(item, bundle, plan) named by the checkout's query or form; exactly one is set."""

    def arg(name):
        return request.GET.get(name) or request.POST.get(name)

    if arg("item"):
        return get_object_or_404(ContentItem, slug=arg("item"), status=ContentItem.Status.PUBLISHED), None, None
    if arg("bundle"):
        return None, get_object_or_404(Bundle, slug=arg("bundle"), is_published=True), None
    if arg("plan"):
        return None, None, get_object_or_404(SubscriptionPlan, slug=arg("plan"), is_active=True)
    raise Http404("Nothing to buy.")


@storefront_only
@login_required
def checkout(request):
    """Review the price (with a coupon), then pay. The form's key makes a double submission one order."""
    item, bundle, plan = _target(request)
    thing = item or bundle or plan
    if not thing.price:  # nothing to pay: a free item opens from its page; a bundle or plan at 0 is not on sale
        if item is not None:
            return redirect("catalog:item", item.slug)
        raise Http404("Not on sale.")
    if request.method != "POST":
        # What paying would refuse (owned already, a subscription held) is said before any Pay button, by the rule
        # the payment itself goes through, with the way to what the learner has.
        try:
            services.purchase_check(user=request.user, item=item, bundle=bundle, plan=plan)
        except ApplicationError as exc:
            return render(request, "payments/checkout.html", {
                "refusal": exc.message, "refusal_link": _refusal_link(exc.code, item=item, bundle=bundle),
                "item": item, "bundle": bundle, "plan": plan, "thing": thing})
    data = request.POST or None
    if data is None and request.GET.get("coupon"):
        # ``?coupon=`` (a shared discount link, or "Buy again" from an order) fills the coupon in, as "Apply" does.
        data = {"key": uuid.uuid4().hex, "coupon": request.GET["coupon"], "apply": "1"}
    form = CheckoutForm(data, initial={"key": uuid.uuid4().hex},
                        conf=services.payment_settings(tenant=request.tenant), user=request.user)
    status = 400  # a refused checkout answers with its error's status (409 for a payment still being confirmed)
    if form.is_valid() and "apply" not in form.data:
        try:
            started = services.checkout_start(
                tenant=request.tenant, user=request.user, idempotency_key=form.cleaned_data["key"], item=item,
                bundle=bundle, plan=plan, coupon_code=form.cleaned_data["coupon"],
                promoter_code=form.cleaned_data.get("referral", ""), visitor=visitor_id(request), request=request)
            if started.redirect_url:
                return HttpResponseRedirect(started.redirect_url)
            return redirect("payments:order", number=started.order.number)
        except ApplicationError as exc:
            form.add_error("coupon" if exc.extra.get("field") == "coupon" else None, exc.message)
            status = exc.status
            if exc.code == "idempotency_key_mismatch":  # the page's attempt was spent on another cart: a new one
                form.data = form.data.copy()
                form.data["key"] = uuid.uuid4().hex
    try:
        # The coupon's price stays shown unless the coupon itself was refused (or the form could not be read).
        priced = form.is_bound and hasattr(form, "cleaned_data") and "coupon" not in form.errors
        coupon = form.cleaned_data.get("coupon", "") if priced else ""
        quote = services.quote(tenant=request.tenant, price=thing.price, item=item, coupon_code=coupon,
                               user=request.user)
    except ApplicationError as exc:
        form.add_error("coupon" if exc.extra.get("field") == "coupon" else None, exc.message)
        quote = services.quote(tenant=request.tenant, price=thing.price, item=item)
    confirmed = user_can_buy(user=request.user)
    context = {"form": form, "item": item, "bundle": bundle, "plan": plan, "thing": thing, "quote": quote,
               "email_confirmed": confirmed}
    if bundle is not None:
        context["owned_part"] = bundle_owned_part(
            user=request.user, items=list(bundle.items.filter(status=ContentItem.Status.PUBLISHED)))
    if quote.coupon is not None:
        # Switching the page's language comes back to this price: the applied coupon goes into the address.
        kind = "item" if item else "bundle" if bundle else "plan"
        context["language_next"] = f"{request.path}?{urlencode({kind: thing.slug, 'coupon': quote.coupon.code})}"
    if not confirmed:  # confirming the address from the email comes back here, coupon and all
        return_after_email_confirmed(request, context.get("language_next") or request.get_full_path())
    if plan:
        # A plan's terms are said before Pay: what each renewal costs (a coupon takes off the first period only)
        # and how long a due renewal leaves access open.
        context.update(renewal_total=services.quote(tenant=request.tenant, price=plan.price, conf=quote.settings).total,
                       grace_days=max(plan.grace_days, MINIMUM_GRACE.days))
    # What the Pay button is read with by a screen reader: the notes above it that bind or stop the payment.
    context["described_by"] = [name for name, shown in (("plan-terms", plan), ("confirm-email", not confirmed),
                                                        ("checkout-terms", request.tenant.terms)) if shown]
    return render(request, "payments/checkout.html", context,
                  status=status if request.method == "POST" and form.errors else 200)


def _refusal_link(code: str, *, item=None, bundle=None) -> tuple[str, str] | None:
    """(address, label) of where a learner whose purchase ``services.purchase_check`` refused with ``code`` opens
    what they have: the item, the bundle's page (which opens each of its items, also to a subscriber, whose My
    learning does not list the whole catalog), or their subscription."""
    if code == "already_owned" and item is not None:
        return reverse("catalog:item", args=[item.slug]), _("Open the item")
    if code == "already_owned" and bundle is not None:
        return reverse("catalog:bundle", args=[bundle.slug]), _("Open the items of this bundle")
    if code == "already_subscribed":
        return reverse("payments:subscription"), _("See your subscription")
    return None


def _sandbox_payment(token: str) -> Payment:
    try:
        data = signing.loads(token, salt="sandbox-checkout", max_age=3600)
    except signing.BadSignature as exc:
        raise Http404("This payment link is not valid.") from exc
    payment = Payment.objects.filter(pk=data["payment"], provider_ref=data["ref"], provider="sandbox").first()
    if payment is None:
        raise Http404("No such payment.")
    return payment


@storefront_only
def sandbox_checkout(request, token: str):
    """The sandbox provider's hosted page. Its buttons send signed webhooks through the real webhook path."""
    payment = _sandbox_payment(token)
    order = payment.order
    if payment.is_overdue:
        services.payment_expire(payment=payment)  # as a provider's page expires, before the sweep gets to it
        payment.refresh_from_db()
    if request.method == "POST" and payment.status == Payment.Status.PENDING:
        outcome = {"pay": "succeeded", "fail": "failed", "cancel": "cancelled"}.get(request.POST.get("action"))
        if outcome is None:
            raise Http404("Unknown action.")
        services.sandbox_settle(tenant=request.tenant, payment=payment, outcome=outcome)
        if outcome == "succeeded":
            messages.success(request, _("Payment received. Enjoy learning!"))
        else:
            messages.info(request, _("No payment was taken."))
        return redirect("payments:order", number=order.number)
    return render(request, "payments/sandbox_checkout.html", {"payment": payment, "order": order})


@csrf_exempt
@require_POST
def webhook(request, provider_name: str):
    """Provider webhooks: 200 when applied, already applied or not ours; 400 when refused.

    On the platform host this is the one endpoint of a provider account that serves every storefront (Stripe's):
    the verified event names its storefront. On a storefront's host it takes that storefront's events only.
    """
    try:
        result = services.webhook_receive(tenant=request.tenant, provider_name=provider_name,
                                          headers=request.headers, body=request.body)
    except ApplicationError as exc:
        return error_json(exc)
    return JsonResponse({"result": result})


@storefront_only
@login_required
def orders(request):
    return render(request, "payments/orders.html", {
        "orders": Order.objects.filter(user=request.user).prefetch_related("lines")})


@storefront_only
@login_required
def order_detail(request, number: str):
    """The learner's receipt; for an unpaid order, the way to finish paying it or to buy the same thing again."""
    order = get_object_or_404(Order.objects.prefetch_related("lines", "lines__item", "lines__bundle", "lines__plan"),
                              number=number, user=request.user)
    if request.method == "POST" and request.POST.get("action") == "pay":
        try:
            url = services.checkout_resume(order=order, user=request.user)
        except ApplicationError as exc:
            messages.info(request, exc.message)
            return redirect("payments:order", number=order.number)
        if url:
            return HttpResponseRedirect(url)
        messages.info(request, _("This checkout can no longer be paid."))
        return redirect("payments:order", number=order.number)
    return render(request, "payments/order_detail.html", {
        "order": order, "payment": order.payments.order_by("-created_at").first(),
        "buy_again": _buy_again_url(order, request.user),
        "renewal_due": Subscription.objects.filter(renewal_order=order, status=Subscription.Status.PAST_DUE).exists()})


def _buy_again_url(order: Order, user) -> str:
    """The checkout for what a declined, cancelled or expired order was for, with its coupon, while the learner can
    still buy it (``services.purchase_check``); renewals are paid from the subscription page."""
    line = order.lines.all()[0]
    if order.status not in (Order.Status.FAILED, Order.Status.CANCELLED) or line.subscription_id:
        return ""
    target = {"item": line.item, "bundle": line.bundle, "plan": line.plan}
    try:
        services.purchase_check(user=user, **target)
    except ApplicationError:
        return ""
    query = {name: thing.slug for name, thing in target.items() if thing is not None}
    if order.coupon_id:
        query["coupon"] = order.coupon.code
    return reverse("payments:checkout") + "?" + urlencode(query)


@storefront_only
def plans(request):
    current = None
    if request.user.is_authenticated:
        current = Subscription.objects.filter(user=request.user).exclude(status=Subscription.Status.ENDED).first()
    plans = list(SubscriptionPlan.objects.filter(is_active=True, price__gt=0).prefetch_related("categories"))
    return render(request, "payments/plans.html", {
        "plans": plans, "current": current, "tiers": any(plan.categories.all() for plan in plans)})


@storefront_only
@login_required
def subscription(request):
    """The learner's subscription: its period, switching plans, cancelling or resuming it, and paying a due
    renewal."""
    sub = (Subscription.objects.filter(user=request.user).select_related("plan", "switch_to", "renewal_order")
           .order_by("-created_at").first())
    if request.method == "POST" and sub is not None:
        try:
            if request.POST.get("action") == "cancel":
                dropped = sub.switch_to
                sub = subscription_cancel(subscription=sub, actor=request.user)
                if sub.status == Subscription.Status.ENDED:  # its renewal was due: it ends now
                    messages.success(request, _("Your subscription has ended; its renewal is closed."))
                else:
                    messages.success(request, _("Your subscription will end at the end of the period you paid for."))
                if dropped is not None:
                    messages.info(request, _("You will not move to %(plan)s either.") % {"plan": dropped.name})
            elif request.POST.get("action") == "resume":
                subscription_resume(subscription=sub, actor=request.user)
                messages.success(request, _("Your subscription continues: each renewal is emailed to you to pay."))
            elif request.POST.get("action") == "switch":
                slug = request.POST.get("plan", "")
                plan = SubscriptionPlan.objects.filter(slug=slug).first() if slug else None
                if slug and plan is None:
                    raise ApplicationError(_("This plan is not on sale."), code="not_on_sale")
                sub = subscription_switch(subscription=sub, plan=plan, actor=request.user)
                if sub.switch_to:
                    messages.success(request, _("From the end of this period you will be on %(plan)s.") % {
                        "plan": sub.switch_to.name})
                else:
                    messages.success(request, _("You stay on %(plan)s; nothing changes.") % {"plan": sub.plan.name})
            elif request.POST.get("action") == "renew":
                started = renewal_pay(subscription=sub, user=request.user, request=request)
                if started.redirect_url:
                    return HttpResponseRedirect(started.redirect_url)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("payments:subscription")
    # What the renewal will charge: the subscription's price, with tax on top where the storefront adds it; and the
    # plans it can switch to at the period's end, each priced as its renewal will be (the storefront's currency).
    conf = services.payment_settings(tenant=request.tenant)
    renewal_total = (services.quote(tenant=request.tenant, price=sub.price, currency=sub.currency, conf=conf).total
                     if sub and sub.price else None)

    def total_now(price: int) -> int:
        return services.quote(tenant=request.tenant, price=price, conf=conf).total

    others = []
    if sub is not None and sub.status == Subscription.Status.ACTIVE:
        others = [(plan, total_now(plan.price))
                  for plan in SubscriptionPlan.objects.filter(is_active=True, price__gt=0).exclude(pk=sub.plan_id)]
    switch_total = total_now(sub.switch_to.price) if sub and sub.switch_to_id else None
    return render(request, "payments/subscription.html", {
        "sub": sub, "renewal_total": renewal_total, "other_plans": others, "switch_total": switch_total})


@storefront_only
@login_required
def promote(request):
    """The promoter's page: apply, then the referral link and its QR code, referred learners and commissions."""
    import io

    import segno

    from .models import Order, Promoter
    from .payouts import statements
    from .promoters import promoter_apply

    promoter = Promoter.objects.filter(user=request.user).first()
    if request.method == "POST" and promoter is None:
        promoter_apply(tenant=request.tenant, user=request.user, visitor=visitor_id(request))
        messages.success(request, _("Thank you: the team will review your application."))
        return redirect("payments:promote")
    programme_open = services.payment_settings(tenant=request.tenant).promoters_enabled
    if not programme_open and promoter is None:
        raise Http404("No promoter programme here.")
    context = {"promoter": promoter, "programme_open": programme_open}
    if promoter is not None:  # what they earned stays in view, also once suspended or the programme ended
        context["statements"] = statements(tenant=request.tenant, kind="promoter", party_id=promoter.pk)
    if programme_open and promoter is not None and promoter.status == Promoter.Status.APPROVED:
        link = request.tenant.url(f"/?ref={promoter.code}")
        buffer = io.BytesIO()
        segno.make(link, error="m").save(buffer, kind="svg", scale=5, xmldecl=False, svgns=True,
                                         title=_("QR code of your referral link"))
        bought = Order.objects.filter(promoter=promoter, paid_at__isnull=False).select_related("user")
        second_level_bp = services.split_rule_current(tenant=request.tenant).promoter_second_level_bp
        context.update(
            link=link, qr_svg=buffer.getvalue().decode(),
            referred=sorted({o.user.display_name or o.user.email.split("@")[0] for o in bought}),
            recruits=promoter.recruits.filter(status=Promoter.Status.APPROVED).count(),
            second_level_percent=second_level_bp / 100 if second_level_bp else None)
    if promoter is not None:
        context["sales"] = promoter_sales(promoter=promoter)
    return render(request, "payments/promote.html", context)


@storefront_only
@login_required
def promote_statement(request):
    """The promoter's verifiable statement (checked with docs/verify_statement.py)."""
    from .ledger import statement_proof
    from .models import LedgerAccount, Promoter

    promoter = get_object_or_404(Promoter, user=request.user)
    accounts = list(LedgerAccount.objects.filter(promoter=promoter))
    response = JsonResponse(statement_proof(tenant=request.tenant, accounts=accounts),
                            json_dumps_params={"ensure_ascii": False, "indent": 1})
    response["Content-Disposition"] = 'attachment; filename="statement.json"'
    return response


@storefront_only
def ledger_heads(request):
    """The storefront's signed ledger chain heads and the public key that checks them."""
    from .heads import heads_document

    return JsonResponse(heads_document(tenant=request.tenant), json_dumps_params={"ensure_ascii": False})
