import csv
from contextlib import nullcontext
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_value
from django.db.models import Prefetch, Sum
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext, pgettext
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from catalog.admin import PriceAdminMixin
from catalog.models import Creator
from marketplace import tenancy
from marketplace.admin_site import ReadOnlyAdmin, TenantScopedAdmin
from marketplace.errors import ApplicationError
from marketplace.forms import MoneyField
from marketplace.models import Tenant
from marketplace.money import CURRENCY_EXPONENTS, format_money, major_units

from . import ledger
from .models import (
    Coupon,
    Entitlement,
    JournalEntry,
    LedgerAccount,
    LedgerHead,
    Order,
    OrderLine,
    Payment,
    PaymentSettings,
    Payout,
    Posting,
    Promoter,
    ReferralTouch,
    Refund,
    SplitRule,
    Subscription,
    SubscriptionPlan,
)
from .payouts import PAYEE_KINDS, PAYEE_LABELS, payable_balances, payables_fingerprint, payout_run, statements
from .services import (
    entitlement_check,
    entitlement_grant,
    entitlement_revoke,
    payment_settings,
    refund_check,
    refund_create,
    split_rule_check,
    split_rule_create,
)

# What an account's display name reads, for lists of accounts and of postings.
PAYEES = ["creator", "promoter", "partner"]
PAYEES_OF_ACCOUNT = [f"account__{path}" for path in PAYEES]


def money_column(field: str, description, currency=lambda row: row.currency):
    """A read-only admin column showing ``field`` (minor units) as money in the row's currency."""

    @admin.display(description=description)
    def column(self, row):
        return format_money(getattr(row, field), currency(row))

    column.__name__ = f"{field}_display"
    return column


def statement_csv_response(filename: str):
    """A CSV download and its writer. Spreadsheets open it as UTF-8 by its byte-order mark, so Chinese memos and
    names read right in Excel."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")
    return response, csv.writer(response)


def csv_time(moment) -> str:
    """A time in the active time zone, as spreadsheets read it; the column's header names the zone."""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def csv_time_header() -> str:
    return gettext("time (%(zone)s)") % {"zone": timezone.get_current_timezone_name()}


class EntitlementForm(forms.ModelForm):
    class Meta:
        model = Entitlement
        fields: list[str] = []  # added by the admin per request, inside the tenant's scope

    def clean(self):
        cleaned = super().clean()
        try:
            entitlement_check(**{f: cleaned.get(f) for f in ("item", "bundle", "whole_catalog", "plan", "starts_at",
                                                             "ends_at")})
        except ApplicationError as exc:
            self.add_error(exc.extra.get("field") or ("item" if exc.code == "entitlement_target" else None),
                           exc.message)
        return cleaned


@admin.register(Entitlement)
class EntitlementAdmin(TenantScopedAdmin):
    """Who may open what. The team grants access by hand (a comp, a school class); checkout adds the rest."""

    list_display = ["user", "item", "bundle", "whole_catalog", "plan", "source", "starts_at", "ends_at", "revoked_at"]
    list_filter = ["source", "whole_catalog"]
    search_fields = ["user__email", "item__title", "bundle__title", "reference"]
    form = EntitlementForm
    fields = ["user", "item", "bundle", "whole_catalog", "plan", "reference", "starts_at", "ends_at"]
    actions = ["revoke"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and request.tenant is not None:
            kwargs["queryset"] = User.objects.filter(memberships__tenant=request.tenant).order_by("email")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        return False  # access changes by revoking and granting, so the history stays readable

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        granted = entitlement_grant(
            tenant=request.tenant, user=data["user"], actor=request.user, item=data.get("item"),
            bundle=data.get("bundle"), whole_catalog=data.get("whole_catalog", False), plan=data.get("plan"),
            reference=data.get("reference", ""), starts_at=data.get("starts_at"), ends_at=data.get("ends_at"))
        obj.pk = granted.pk

    @admin.action(description=_("Revoke access now"))
    def revoke(self, request, queryset):
        for entitlement in queryset:
            entitlement_revoke(entitlement=entitlement, actor=request.user)
        self.message_user(request, _("Access revoked."), messages.SUCCESS)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ["title", "item", "bundle", "unit_price_display", "discount_display", "tax_display", "total_display"]
    readonly_fields = fields

    unit_price_display = money_column("unit_price", _("unit price"), lambda line: line.order.currency)
    discount_display = money_column("discount", _("discount"), lambda line: line.order.currency)
    tax_display = money_column("tax", _("tax"), lambda line: line.order.currency)
    total_display = money_column("total", _("total"), lambda line: line.order.currency)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order")


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ["provider", "status", "amount_display", "refunded_amount_display", "provider_ref", "created_at"]
    readonly_fields = fields

    amount_display = money_column("amount", _("amount"))
    refunded_amount_display = money_column("refunded_amount", _("refunded"))


class PostingInline(ReadOnlyInline):
    model = Posting
    fields = ["account", "amount_display", "currency"]
    readonly_fields = fields

    amount_display = money_column("amount", _("amount"))

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(*PAYEES_OF_ACCOUNT)


class RefundForm(forms.Form):
    """A refund's amount is typed as amounts are shown (``MoneyField``, in the order's currency) and cleaned to minor
    units."""

    reason = forms.CharField(label=_("Reason"), required=False, max_length=200)
    paid_outside = forms.BooleanField(
        label=_("Paid back outside the payment provider"), required=False,
        help_text=_("Tick when you returned the money yourself (by bank transfer or in cash), for example after the "
                    "provider could not refund the card: the provider is not asked, the refund is only booked."))
    # What had been refunded when the form was shown: a second submission of the same form refunds nothing more.
    seen = forms.IntegerField(widget=forms.HiddenInput, min_value=0)

    field_order = ["amount", "reason", "paid_outside"]

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        exponent = CURRENCY_EXPONENTS.get(currency, 2)
        if exponent == 0:
            help_text = _("In whole %(currency)s, as amounts are shown: %(example)s.") % {
                "currency": currency, "example": "1250"}
        else:
            help_text = _("In %(currency)s as amounts are shown: %(major)s, not %(minor)s.") % {
                "currency": currency, "major": major_units(125 * 10 ** (exponent - 1), currency),
                "minor": 125 * 10 ** (exponent - 1)}
        self.fields["amount"] = MoneyField(
            currency=currency, label=_("Amount to refund"), min_value=None, help_text=help_text,
            error_messages={"max_decimal_places": _("Too many decimals for this currency.")})
        self.order_fields(self.field_order)

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount <= 0:
            raise forms.ValidationError(_("Enter an amount above zero."))
        return amount


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ["number", "user", "status", "total_display", "refunded_list_display", "when"]
    list_filter = ["status"]
    search_fields = ["number", "user__email"]
    readonly_fields = ["number", "user", "status", "currency", "subtotal_display", "discount_display", "tax_display",
                       "total_display", "refunded_display", "coupon", "split_rule", "source", "channel", "partner",
                       "promoter", "promoter_second_level", "attribution", "created_at", "paid_at", "refunds",
                       "ledger_entries"]
    fields = readonly_fields
    inlines = [OrderLineInline, PaymentInline]
    change_form_template = "admin/payments/order/change_form.html"

    subtotal_display = money_column("subtotal", _("subtotal"))
    discount_display = money_column("discount", _("discount"))
    total_display = money_column("total", _("total"))
    refunded_display = money_column("refunded", _("refunded"))

    @admin.display(description=_("tax"))
    def tax_display(self, order):
        # Where prices include tax the subtotal and total already hold it: said, so the figures add up.
        amount = format_money(order.tax, order.currency)
        if order.tax and order.prices_include_tax:
            return gettext("%(amount)s, included in the total") % {"amount": amount}
        return amount

    @admin.display(description=_("date"), ordering="created_at")
    def when(self, order):
        """When it was paid, or, unpaid, placed: one date column keeps the list within a laptop's width."""
        return order.paid_at or order.created_at

    @admin.display(description=_("refunded"))
    def refunded_list_display(self, order):
        return format_money(order.refunded, order.currency) if order.refunded else "-"

    @admin.display(description=_("refunds"))
    def refunds(self, order):
        """Each refund with how it was paid, and the ones the provider could not pay out (undone: refund again)."""
        rows = []
        for refund in Refund.objects.filter(payment__order=order).order_by("created_at"):
            if refund.failed_at:
                state = _("failed at the provider (%(why)s) and undone: refund again, at the provider or outside "
                          "it") % {"why": refund.failure_reason or "-"}
            else:
                state = (_("paid back outside the provider") if refund.paid_outside
                         else pgettext("a refund's state", "refunded"))
            # Written as the page's other times are (the storefront's zone, the language's long format).
            rows.append((display_for_value(refund.created_at, "-"),
                         format_money(refund.amount, order.currency), state, refund.reason))
        return format_html_join("", "<div>{}: {} {} {}</div>", rows) or "-"

    @admin.display(description=_("ledger"))
    def ledger_entries(self, order):
        postings = Posting.objects.select_related(*PAYEES_OF_ACCOUNT)
        return format_html_join(
            "", "<div>#{} {}: {}</div>",
            ((e.sequence, e.get_kind_display(), ", ".join(
                f"{p.account.display_name} {format_money(p.amount, p.currency)}" for p in e.postings.all()))
             for e in order.journal_entries.prefetch_related(Prefetch("postings", queryset=postings)))) or "-"

    def get_urls(self):
        return [path("<path:object_id>/refund/", self.admin_site.admin_view(self.refund_view),
                     name="payments_order_refund"), *super().get_urls()]

    def refund_view(self, request, object_id):
        """Refund part or all of an order's payment; the amount is typed in major units."""
        order = self.get_object(request, object_id)
        if not request.user.has_perm("payments.add_refund"):
            return HttpResponseRedirect(reverse("admin:payments_order_change", args=[order.pk]))
        payment = order.payments.filter(status=Payment.Status.SUCCEEDED).first()
        form = RefundForm(request.POST or None, initial={"seen": payment.refunded_amount if payment else 0},
                          currency=order.currency)
        context = {**self.admin_site.each_context(request), "order": order, "payment": payment, "form": form,
                   "opts": self.model._meta, "title": _("Refund %(number)s") % {"number": order.number}}
        if payment is not None and request.method == "POST" and form.is_valid():
            try:
                if not request.POST.get("confirm"):
                    # Money leaves and access may end: the amount is checked, then confirmed once more, as Django
                    # confirms a deletion.
                    amount = form.cleaned_data["amount"]
                    refund_check(payment=payment, amount=amount, refunded_before=form.cleaned_data["seen"])
                    return render(request, "admin/payments/order/refund_confirm.html", {
                        **context, "amount": amount, "whole": amount == payment.refundable,
                        "paid_outside": form.cleaned_data["paid_outside"], "reason": form.cleaned_data["reason"]})
                # The operator refunds on the platform host in the order's storefront scope, as its team would.
                with tenancy.tenant_phase(order.tenant) if request.tenant is None else nullcontext():
                    refund_create(payment=payment, amount=form.cleaned_data["amount"], actor=request.user,
                                  reason=form.cleaned_data["reason"], refunded_before=form.cleaned_data["seen"],
                                  paid_outside=form.cleaned_data["paid_outside"])
                self.message_user(request, _("Refunded."), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:payments_order_change", args=[order.pk]))
            except ApplicationError as exc:
                form.add_error("amount", exc.message)
                if exc.code == "refund_stale":  # show what is refunded now; the next submission is on that
                    payment.refresh_from_db()
                    form.data = form.data.copy()
                    form.data["seen"] = payment.refunded_amount
        return render(request, "admin/payments/order/refund.html", context)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["order_link", "payment", "amount_display", "reason", "paid_outside", "created_by", "created_at",
                    "failed_at", "failure_reason"]
    list_filter = ["paid_outside", ("failed_at", admin.EmptyFieldListFilter)]
    list_select_related = ["payment__order", "created_by"]
    search_fields = ["payment__order__number", "payment__order__user__email"]

    amount_display = money_column("amount", _("amount"), lambda refund: refund.payment.currency)
    fields = readonly_fields = ["order_link", "payment", "amount_display", "reason", "paid_outside", "provider_ref",
                                "created_by", "created_at", "failed_at", "failure_reason"]

    @admin.display(description=_("order"), ordering="payment__order__number")
    def order_link(self, refund):
        order = refund.payment.order
        return format_html('<a href="{}">{}</a>', reverse("admin:payments_order_change", args=[order.pk]),
                           order.number)


class CouponForm(forms.ModelForm):
    # No Meta: the admin adds the coupon's fields per request, inside the tenant's scope (the item choices need it).

    def clean_code(self):
        # Codes are not case-sensitive: keep them upper-case, so "save20" is shown as a duplicate of "SAVE20".
        return self.cleaned_data["code"].strip().upper()

    # The value is typed as it is shown: a percentage's percent (12.5 for 12.5%), a fixed amount as money in the
    # storefront's currency (10.00 for ¥10.00); stored in basis points and minor units. ``get_form`` sets the currency.
    currency = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        coupon = self.instance
        if coupon.pk is not None and "value" in self.fields and not self.is_bound:
            self.initial["value"] = self._shown(coupon.kind, coupon.value)

    def _exponent(self, kind: str) -> int:
        return 2 if kind == Coupon.Kind.PERCENT else CURRENCY_EXPONENTS.get(self.currency, 2)

    def _shown(self, kind: str, stored: int) -> Decimal:
        return Decimal(stored).scaleb(-self._exponent(kind))

    def clean(self):
        cleaned = super().clean()
        kind, typed = cleaned.get("kind"), cleaned.get("value")
        if kind is None or not isinstance(typed, Decimal):  # no storefront, no conversion (``get_form``)
            return cleaned
        exponent = self._exponent(kind)
        stored = typed.scaleb(exponent)
        if stored != stored.to_integral_value():
            self.add_error("value", _("A percentage takes at most two decimals (12.25).") if kind == Coupon.Kind.PERCENT
                           else _("%(currency)s amounts have at most %(count)s decimals.") % {
                               "currency": self.currency, "count": exponent})
        elif kind == Coupon.Kind.PERCENT and typed >= 100:
            # Checkout sells nothing for zero (no payment, no sale to book or share): a free place is a grant.
            self.add_error("value", _("A coupon takes less than 100%% off: every sale is paid for. To give something "
                                      "away, grant the learner access under Entitlements.") % {})
        else:
            cleaned["value"] = int(stored)
        return cleaned


@admin.register(Coupon)
class CouponAdmin(TenantScopedAdmin):
    form = CouponForm
    list_display = ["code", "kind", "value_display", "item", "used_count", "max_uses", "expires_at", "is_active"]
    list_filter = ["kind", "is_active"]
    list_select_related = ["tenant", "item"]
    search_fields = ["code"]

    @admin.display(description=_("value"), ordering="value")
    def value_display(self, coupon):
        if coupon.kind == Coupon.Kind.PERCENT:
            return f"{coupon.value / 100:g}%"
        return format_money(coupon.value, coupon.tenant.currency)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        tenant = obj.tenant if obj is not None else request.tenant
        if tenant is not None and "value" in form.base_fields:
            form.currency, stored = tenant.currency, form.base_fields["value"]
            ten = 10 * 10 ** CURRENCY_EXPONENTS.get(tenant.currency, 2)
            form.base_fields["value"] = forms.DecimalField(
                label=stored.label, min_value=0, max_digits=18, help_text=_(
                    "A percentage as its percent: 20 for 20%%, 12.5 for 12.5%%. A fixed amount as prices are shown: "
                    "%(typed)s for %(shown)s.") % {"typed": major_units(ten, tenant.currency),
                                                   "shown": format_money(ten, tenant.currency)})
        return form


@admin.register(PaymentSettings)
class PaymentSettingsAdmin(TenantScopedAdmin):
    list_display = ["__str__", "tax_rate_bp", "prices_include_tax", "refund_window_days"]

    def save_model(self, request, obj, form, change):
        from catalog.services import catalog_changed

        super().save_model(request, obj, form, change)
        catalog_changed(obj.tenant_id)  # cached pages show prices with or without tax

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not PaymentSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


class SplitRuleForm(forms.ModelForm):
    """The team sets the commissions; the platform fee is the operator's (``Tenant.platform_fee_bp``), shown here
    and checked with them."""

    class Meta:
        model = SplitRule
        fields = ["platform_fee_bp", "partner_commission_bp", "promoter_commission_bp", "promoter_second_level_bp"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        fee = self.fields.get("platform_fee_bp")
        tenant = getattr(self, "served_tenant", None)
        if fee is not None and tenant is not None:
            fee.disabled = True
            fee.help_text = _("Set by the platform operator.")
            self.initial["platform_fee_bp"] = tenant.platform_fee_bp

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                split_rule_check(**{f: cleaned[f] for f in self.Meta.fields})
            except ApplicationError as exc:
                self.add_error(exc.extra.get("field"), exc.message)
        return cleaned


@admin.register(SplitRule)
class SplitRuleAdmin(TenantScopedAdmin):
    """Rules are versioned: adding one makes a new version; existing versions cannot change."""

    form = SplitRuleForm

    list_display = ["version", "platform_fee_bp", "partner_commission_bp", "promoter_commission_bp",
                    "promoter_second_level_bp", "created_at"]
    fields = SplitRuleForm.Meta.fields

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        rule = split_rule_create(tenant=request.tenant, actor=request.user,
                                 partner_commission_bp=obj.partner_commission_bp,
                                 promoter_commission_bp=obj.promoter_commission_bp,
                                 promoter_second_level_bp=obj.promoter_second_level_bp)
        obj.pk, obj.version, obj.platform_fee_bp = rule.pk, rule.version, rule.platform_fee_bp


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    """Accounts are shown by their ``display_name``, in the team's language; the English ``name`` they were opened
    with stays in the books unchanged."""

    list_display = ["name_display", "kind", "currency", "balance_display"]
    list_filter = ["kind", "currency"]
    fields = ["name_display", "kind", "code", "currency", "creator", "promoter", "partner"]
    readonly_fields = ["name_display"]
    actions = ["statement_csv"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(*PAYEES).annotate(balance=Sum("postings__amount"))

    @admin.display(description=_("name"))
    def name_display(self, account):
        return account.display_name

    @admin.display(description=_("balance (credit negative)"), ordering="balance")
    def balance_display(self, account):
        return format_money(account.balance or 0, account.currency)

    @admin.action(description=_("Statement (CSV) with the chain head"))
    def statement_csv(self, request, queryset):
        """The selected accounts' postings up to their storefront's chain head.

        Each storefront has its own chain, and the operator's admin on the platform host lists every storefront's
        accounts: a selection spanning storefronts has no one head to end with, so it gets no statement."""
        tenants = set(queryset.values_list("tenant_id", flat=True))
        if len(tenants) > 1:
            self.message_user(request, _("Select the accounts of one storefront: each storefront's statement ends "
                                         "with its own chain head."), messages.ERROR)
            return None
        head = LedgerHead.objects.filter(tenant_id__in=tenants).first()
        response, writer = statement_csv_response("statement.csv")
        writer.writerow([gettext("account"), gettext("entry"), gettext("kind"), csv_time_header(), gettext("amount"),
                         gettext("currency"), gettext("entry hash")])
        # Bounded by the head read first: a sale committing meanwhile adds no lines the head does not cover.
        for posting in Posting.objects.filter(
                account__in=queryset, entry__sequence__lte=head.sequence if head else 0).select_related(
                "entry", "account").order_by("entry__sequence", "id"):
            writer.writerow([posting.account.code, posting.entry.sequence, posting.entry.get_kind_display(),
                             csv_time(posting.entry.created_at), major_units(posting.amount, posting.currency),
                             posting.currency, posting.entry.hash])
        writer.writerow([gettext("chain head"), head.sequence if head else 0, "", "", "", "",
                         head.hash if head else ""])
        return response


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "kind", "memo", "order", "created_at", "short_hash"]
    list_filter = ["kind"]
    ordering = ["-sequence"]  # the newest first, as a bank statement's online view; the chain check reads in order
    search_fields = ["memo", "order__number", "hash"]
    readonly_fields = ["sequence", "kind", "memo", "order", "refund", "created_at", "previous_hash", "hash"]
    fields = readonly_fields
    inlines = [PostingInline]
    change_list_template = "admin/payments/journalentry/change_list.html"

    @admin.display(description=_("hash"))
    def short_hash(self, entry):
        return entry.hash[:12]

    def changelist_view(self, request, extra_context=None):
        result = ledger.ledger_verify(tenant=request.tenant) if request.tenant is not None else None
        return super().changelist_view(request, {**(extra_context or {}), "verify": result})


@admin.register(SubscriptionPlan)
class SubscriptionPlanAdmin(PriceAdminMixin, TenantScopedAdmin):
    list_display = ["name", "interval", "price_display", "grace_days", "creators_share", "is_active"]
    filter_horizontal = ["categories"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["sharing_now"]

    @admin.display(description=_("a payment shared now"))
    def sharing_now(self, plan):
        """One payment at the plan's price as it would be shared today (saved settings, no commission), so the team
        sees what sharing with creators does before and after turning it on."""
        from . import splits
        from .services import plan_payment_parts

        if plan.pk is None:
            return "-"

        parts = plan_payment_parts(plan=plan)
        names = dict(Creator.objects.filter(pk__in=[s.party for s in parts if s.kind == "creator"])
                     .values_list("pk", "name"))
        label = {splits.TAX: _("Tax"), splits.PLATFORM: _("Platform fee"), splits.TENANT: _("Storefront")}
        ordered = sorted(parts.items(), key=lambda p: (p[0].kind == "tenant", p[0].kind != "tax", -p[1]))
        return format_html_join("", "<div>{}: {}</div>", (
            (label.get(share) or names.get(share.party, share.party), format_money(part, plan.tenant.currency))
            for share, part in ordered if part))


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ["user", "plan", "price_display", "interval", "status", "current_period_end", "cancel_at_period_end",
                    "switch_to", "grace_until"]
    list_filter = ["status", "plan"]
    list_select_related = ["user", "plan", "switch_to"]
    search_fields = ["user__email"]
    actions = ["stop_renewing"]
    fields = readonly_fields = ["user", "plan", "price_display", "interval", "billing_day", "status",
                                "current_period_start", "current_period_end", "cancel_at_period_end", "switch_to",
                                "grace_until", "renewal_order", "entitlement", "created_at", "ended_at"]

    def has_renewal_permission(self, request):
        return request.user.has_perm("payments.change_subscription")

    @admin.action(description=_("Stop renewing at period end"), permissions=["renewal"])
    def stop_renewing(self, request, queryset):
        """Retiring a plan, say: each learner keeps what they paid for, to the end of its period."""
        from .subscriptions import subscription_cancel

        stopped = 0
        for sub in queryset.exclude(status=Subscription.Status.ENDED).exclude(cancel_at_period_end=True):
            subscription_cancel(subscription=sub, actor=request.user)
            stopped += 1
        self.message_user(request, ngettext("%(n)d subscription stops renewing at the end of its period.",
                                            "%(n)d subscriptions stop renewing at the end of their period.",
                                            stopped) % {"n": stopped}, messages.SUCCESS)

    @admin.display(description=_("price per period"))
    def price_display(self, sub):
        # In the currency the learner subscribed in, which renewals charge, not the storefront's current one.
        return format_money(sub.price, sub.currency)


class StorefrontFilter(admin.SimpleListFilter):
    """The operator's choice of storefront on the payouts page (deactivated ones too)."""

    title = _("storefront")
    parameter_name = "storefront"

    def lookups(self, request, model_admin):
        return [(t.slug, t.name if t.is_active else _("%(name)s (deactivated)") % {"name": t.name})
                for t in Tenant.objects.order_by("name")]

    def queryset(self, request, queryset):
        return queryset.filter(tenant__slug=self.value()) if self.value() else queryset


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    """Payouts already made, the payees' statements, and the payout run.

    The operator, on the platform host, chooses a storefront (``?storefront=SLUG``) and then sees its statements,
    downloads them and runs its payouts as its team would, in its scope: also for a storefront that was deactivated,
    whose payees are still owed what they earned."""

    list_display = ["creator", "promoter", "partner", "amount_display", "reference", "created_at", "created_by"]
    fields = readonly_fields = ["creator", "promoter", "partner", "amount_display", "reference", "entry", "created_at",
                                "created_by"]
    change_list_template = "admin/payments/payout/change_list.html"

    @admin.display(description=_("amount"))
    def amount_display(self, payout):
        return format_money(payout.amount, payout.currency)

    def get_urls(self):
        return [
            path("run/", self.admin_site.admin_view(self.run_view), name="payments_payout_run"),
            path("mine/", self.admin_site.admin_view(self.earnings_view), name="payments_payout_mine"),
            path("statement/<str:kind>/<int:party_id>.csv", self.admin_site.admin_view(self.statement_csv),
                 name="payments_payout_statement"),
            path("statement/<str:kind>/<int:party_id>.json", self.admin_site.admin_view(self.statement_json),
                 name="payments_payout_statement_json"),
            *super().get_urls(),
        ]

    @staticmethod
    def _storefront(request, slug: str | None = None):
        """The storefront served, or on the platform host the one the operator chose (deactivated ones too)."""
        if request.tenant is not None:
            return request.tenant
        slug = slug if slug is not None else request.GET.get("storefront", "")
        return Tenant.objects.filter(slug=slug).first() if slug else None

    def _in_scope(self, request, storefront):
        """The operator works in the chosen storefront's scope, as its team would; a team already is in it."""
        return tenancy.tenant_phase(storefront) if request.tenant is None else nullcontext()

    def get_list_filter(self, request):
        return [StorefrontFilter] if request.tenant is None else []

    def changelist_view(self, request, extra_context=None):
        storefront = self._storefront(request)
        found = []
        if storefront is not None:
            with self._in_scope(request, storefront):
                found = statements(tenant=storefront)
        context = {"statements": found, "can_run": self._can_run(request, storefront), "storefront": storefront,
                   "operator": request.tenant is None}
        return super().changelist_view(request, {**(extra_context or {}), **context})

    def _can_run(self, request, storefront) -> bool:
        return storefront is not None and request.user.has_perm("payments.add_payout")

    def run_view(self, request):
        """The payout run: the payees and amounts it would pay are shown for confirmation first, as a refund's are;
        the confirmed run pays exactly those, or nothing if they changed meanwhile."""
        storefront = self._storefront(request, request.POST.get("storefront"))
        if request.method == "POST" and self._can_run(request, storefront):
            reference = request.POST.get("reference", "")[:100]
            with self._in_scope(request, storefront):
                if not request.POST.get("confirm"):
                    balances = payable_balances(tenant=storefront)
                    if balances:
                        return self._run_confirm(request, storefront, balances, reference)
                    payouts = []
                else:
                    try:
                        payouts = payout_run(tenant=storefront, actor=request.user, reference=reference,
                                             seen=request.POST.get("seen", ""))
                    except ApplicationError as exc:
                        self.message_user(request, exc.message, messages.ERROR)
                        return self._back_to_list(request, storefront)
            if payouts:
                self.message_user(request, ngettext("%(n)d payout made.", "%(n)d payouts made.", len(payouts))
                                  % {"n": len(payouts)}, messages.SUCCESS)
            else:
                self.message_user(request, gettext(
                    "Nothing is payable yet: shares become payable once their sale's refund window has passed "
                    "(see “Held (refund window)”)."), messages.INFO)
        return self._back_to_list(request, storefront)

    def _back_to_list(self, request, storefront):
        back = reverse("admin:payments_payout_changelist")
        return HttpResponseRedirect(f"{back}?storefront={storefront.slug}" if request.tenant is None and storefront
                                    else back)

    def _run_confirm(self, request, storefront, balances, reference: str):
        totals: dict[str, int] = {}
        for account, owed in balances:
            totals[account.currency] = totals.get(account.currency, 0) + owed
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "storefront": storefront,
                   "operator": request.tenant is None, "title": _("Pay these balances?"), "reference": reference,
                   "payees": [(account.payee_name, PAYEE_LABELS[account.kind], owed, account.currency)
                              for account, owed in balances],
                   "totals": sorted(totals.items()), "seen": payables_fingerprint(balances)}
        return TemplateResponse(request, "admin/payments/payout/run_confirm.html", context)

    def earnings_view(self, request):
        """A creator's own earnings: what is held, payable and paid, each sale's part, and both statements."""
        creator = Creator.objects.filter(user=request.user).first() if request.tenant is not None else None
        if creator is None:
            raise Http404("You have no creator profile on this storefront.")
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "creator": creator,
                   "title": _("My earnings"),
                   "statements": statements(tenant=request.tenant, kind="creator", party_id=creator.pk)}
        return TemplateResponse(request, "admin/payments/payout/earnings.html", context)

    def _check_payee(self, request, kind: str, party_id: int):
        """Statements are for the storefront's team (the operator: of the storefront chosen) and for the creator they
        belong to; anyone else gets a 404. Returns the storefront."""
        storefront = self._storefront(request)
        if party_id > 2**63 - 1 or storefront is None or kind not in PAYEE_KINDS:  # no database id is that large
            raise Http404("No such payee.")
        with self._in_scope(request, storefront):
            mine = kind == "creator" and Creator.objects.filter(pk=party_id, user=request.user).exists()
        if not (mine or self.has_view_permission(request)):
            raise Http404("No such payee.")
        return storefront

    def statement_json(self, request, kind: str, party_id: int):
        """The verifiable statement (see docs/ledger.md) of one creator, promoter or partner."""
        storefront = self._check_payee(request, kind, party_id)
        with self._in_scope(request, storefront):
            accounts = list(LedgerAccount.objects.filter(tenant=storefront, **{f"{kind}_id": party_id}))
            if not accounts:
                raise Http404("No statement for this payee.")
            proof = ledger.statement_proof(tenant=storefront, accounts=accounts)
        response = JsonResponse(proof, json_dumps_params={"ensure_ascii": False, "indent": 1})
        response["Content-Disposition"] = f'attachment; filename="statement-{kind}-{party_id}.json"'
        return response

    def statement_csv(self, request, kind: str, party_id: int):
        """One payee's statement: its lines and totals in each currency it was credited in, then the chain head."""
        storefront = self._check_payee(request, kind, party_id)
        with self._in_scope(request, storefront):
            found = statements(tenant=storefront, kind=kind, party_id=party_id)
        if not found:
            raise Http404("No statement for this payee.")
        response, writer = statement_csv_response(f"statement-{kind}-{party_id}.csv")
        writer.writerow([gettext("entry"), gettext("kind"), csv_time_header(), gettext("memo"), gettext("amount"),
                         gettext("currency"), gettext("entry hash")])
        for statement in found:
            currency = statement.currency
            for line in statement.lines:
                writer.writerow([line.sequence, JournalEntry.Kind(line.kind).label, csv_time(line.created_at),
                                 line.memo, major_units(line.amount, currency), currency, line.entry_hash])
            for label, amount in ((gettext("Held (refund window)"), statement.held),
                                  (gettext("Payable"), statement.payable),
                                  (pgettext("paid out to a payee", "Paid"), statement.paid)):
                writer.writerow([label, "", "", "", major_units(amount, currency), currency, ""])
        writer.writerow([gettext("chain head"), found[0].chain_sequence, "", "", "", "", found[0].chain_head])
        return response


class PromoterInviteForm(forms.ModelForm):
    """The team invites a learner by their email address; they are a promoter at once."""

    email = forms.EmailField(label=_("Learner's email"),
                             help_text=_("They are approved at once and get an email with their referral link."))

    class Meta:
        model = Promoter
        fields = ["email"]

    def clean_email(self):
        from .promoters import promoter_invitee

        email = self.cleaned_data["email"]
        try:
            promoter_invitee(email=email)
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc
        return email


@admin.register(Promoter)
class PromoterAdmin(TenantScopedAdmin):
    """Learners apply on the storefront and the team decides; the team can also invite a learner ("Add")."""

    list_display = ["user", "code", "status", "recruited_by", "created_at", "approved_at"]
    list_filter = ["status"]
    search_fields = ["user__email", "code"]
    readonly_fields = ["user", "code", "status", "recruited_by", "created_at", "approved_at"]
    fields = readonly_fields
    actions = ["approve", "reject", "suspend"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = PromoterInviteForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["email"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_add_permission(self, request):
        if not super().has_add_permission(request):
            return False
        return payment_settings(tenant=request.tenant).promoters_enabled

    def save_model(self, request, obj, form, change):
        from .promoters import promoter_invite

        if change:
            return super().save_model(request, obj, form, change)
        promoter = promoter_invite(tenant=request.tenant, email=form.cleaned_data["email"], actor=request.user)
        obj.pk, obj.tenant, obj.user, obj.code, obj.status = (promoter.pk, promoter.tenant, promoter.user,
                                                              promoter.code, promoter.status)

    def has_delete_permission(self, request, obj=None):
        return False

    def _decide(self, request, queryset, status):
        from .promoters import promoter_decide

        changed, unchanged, refused = 0, 0, []
        for promoter in queryset:
            if promoter.status == status:
                unchanged += 1
                continue
            try:
                promoter_decide(promoter=promoter, status=status, actor=request.user)
                changed += 1
            except ApplicationError as exc:
                refused.append(f"{promoter.code}: {exc.message}")
        for message in refused:
            self.message_user(request, message, messages.WARNING)
        label = str(Promoter.Status(status).label).lower()
        if changed:
            self.message_user(request, ngettext("%(n)d promoter is now %(status)s.",
                                                "%(n)d promoters are now %(status)s.", changed)
                              % {"n": changed, "status": label}, messages.SUCCESS)
        if unchanged:
            self.message_user(request, ngettext("%(n)d promoter already was %(status)s: nothing changed.",
                                                "%(n)d promoters already were %(status)s: nothing changed.",
                                                unchanged) % {"n": unchanged, "status": label}, messages.INFO)

    @admin.action(description=_("Approve"))
    def approve(self, request, queryset):
        self._decide(request, queryset, Promoter.Status.APPROVED)

    @admin.action(description=_("Reject"))
    def reject(self, request, queryset):
        self._decide(request, queryset, Promoter.Status.REJECTED)

    @admin.action(description=_("Suspend"))
    def suspend(self, request, queryset):
        self._decide(request, queryset, Promoter.Status.SUSPENDED)


@admin.register(ReferralTouch)
class ReferralTouchAdmin(ReadOnlyAdmin):
    list_display = ["promoter", "source", "user", "landing_path", "created_at"]
    list_filter = ["source"]
