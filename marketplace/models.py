"""Tenants, their hosts, and the audit trail: the global tables every other app hangs off."""

from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from .audit import describe
from .money import CURRENCY_CHOICES, charge_step_check

hostname_validator = RegexValidator(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$",
    _("Enter a host name such as learn.example.com (lower case, no scheme, port or path)."),
)
colour_validator = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Enter a colour as #RRGGBB, for example #2563eb."))
# WCAG 2.1 AA (1.4.3) for normal text: buttons are white text on the primary colour, links the colour on white.
MIN_CONTRAST_WITH_WHITE = 4.5
RESERVED_SLUGS = {"www", "admin", "api", "static", "media", "platform", "zhiku"}


def contrast_with_white(colour: str) -> float:
    """The WCAG contrast ratio of ``colour`` (#RRGGBB) with white, from 1 (white itself) to 21 (black)."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    red, green, blue = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 1.05 / (0.2126 * red + 0.7152 * green + 0.0722 * blue + 0.05)


def validate_contrast_with_white(colour: str) -> None:
    if not colour_validator.regex.fullmatch(colour or ""):
        return  # the format's own validator says what is wrong
    ratio = contrast_with_white(colour)
    if ratio < MIN_CONTRAST_WITH_WHITE:
        raise ValidationError(
            _("White button text on %(colour)s (and links in it on white) has a contrast of only %(ratio)s:1; text "
              "needs at least %(minimum)s:1 to be read. Choose a darker colour."),
            code="low_contrast",
            params={"colour": colour, "ratio": f"{ratio:.2f}", "minimum": MIN_CONTRAST_WITH_WHITE})


def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA time zone this system knows, by name. Not "localtime" and "Factory": they name no place."""
    return [(name, name) for name in sorted(available_timezones() - {"localtime", "Factory"})]


def validate_slug_not_reserved(value: str) -> None:
    if value in RESERVED_SLUGS:
        raise ValidationError(_("“%(slug)s” is reserved; choose another."), params={"slug": value})


def dev_host_slug(host: str) -> str | None:
    """The storefront slug a development host ``<slug><TENANT_DEV_HOST_SUFFIX>`` names, or None for any other host."""
    suffix = settings.TENANT_DEV_HOST_SUFFIX
    if suffix and host.endswith(suffix) and host.count(".") == suffix.count("."):
        return host[: -len(suffix)]
    return None


def platform_fee_default() -> int:
    """A new storefront's platform fee (``PLATFORM_FEE_BP``), until the operator agrees another with it."""
    return settings.PLATFORM_FEE_BP


def validate_storefront_host(host: str, *, tenant_id: int | None = None) -> None:
    """Refuse a host that cannot serve the storefront ``tenant_id`` (None: one being onboarded).

    A platform host (``PLATFORM_HOSTS``) never reaches a storefront, so the storefront and its owner's invitation
    link would be unreachable. A development host ``<slug><TENANT_DEV_HOST_SUFFIX>`` of another storefront (active
    or not) is how that storefront answers today, and a domain row for it would take its visitors over. A host
    already in the domain table is left to the unique constraint.
    """
    host = host.lower().rstrip(".")
    if host in {h.lower() for h in settings.PLATFORM_HOSTS}:
        raise ValidationError(_("“%(host)s” is the platform's own host; a storefront needs a host of its own."),
                              code="platform_host", params={"host": host})
    slug = dev_host_slug(host)
    if slug is not None:
        other = Tenant.objects.filter(slug=slug).exclude(pk=tenant_id).first()
        if other is not None:
            raise ValidationError(_("“%(host)s” already serves the storefront “%(name)s”."),
                                  code="host_taken", params={"host": host, "name": other.name})


class Tenant(models.Model):
    """A platform that runs its storefront on Zhiku: a school, a creator, a media house."""

    slug = models.SlugField(
        _("slug"), max_length=50, unique=True, validators=[validate_slug_not_reserved],
        help_text=_("Short name used in reports, in every ledger entry and, during development, in the host name "
                    "(acme for acme.localhost). It cannot be changed later."),
    )
    name = models.CharField(_("name"), max_length=200)
    logo = models.ImageField(_("logo"), upload_to="tenants/logos/", blank=True)
    primary_color = models.CharField(_("primary colour"), max_length=7, default="#2563eb",
                                     validators=[colour_validator, validate_contrast_with_white],
                                     help_text=_("Buttons are white text on it and links are it on white: it needs a "
                                                 "contrast of at least 4.5:1 with white."))
    default_language = models.CharField(_("default language"), max_length=10, choices=settings.LANGUAGES,
                                        default="zh-hans")
    time_zone = models.CharField(
        _("time zone"), max_length=64, choices=time_zone_choices, default="UTC",
        help_text=_("The storefront's clock: times typed in its admin or imported without a zone are read in it, its "
                    "pages and emails show times in it, and its digests keep quiet at night in it."))
    currency = models.CharField(
        _("currency"), max_length=3, choices=CURRENCY_CHOICES, default="CNY",
        help_text=_("Prices are not converted when it changes: they keep their numbers, so ¥99.00 becomes $99.00. "
                    "Only the platform operator changes it, and only before the storefront's first order."))
    platform_fee_bp = models.PositiveIntegerField(
        _("platform fee (basis points)"), default=platform_fee_default, validators=[MaxValueValidator(10000)],
        help_text=_("The platform's share of each sale, agreed with the tenant. Only the platform operator changes "
                    "it; a change applies to orders placed afterwards."))
    contact_email = models.EmailField(
        _("contact email"), blank=True,
        help_text=_("Where learners write to the storefront: shown in every page's footer. Leave empty for none."))
    terms = models.TextField(
        _("terms of sale"), blank=True,
        help_text=_("In Markdown. Shown at /legal/terms/, linked in every page's footer and named next to the pay "
                    "button. Leave empty for none."))
    privacy_policy = models.TextField(
        _("privacy policy"), blank=True,
        help_text=_("In Markdown. Shown at /legal/privacy/ and linked in every page's footer. Leave empty for none."))
    white_label = models.BooleanField(
        _("white label"), default=False,
        help_text=_("Leaves “Powered by Zhiku” out of the storefront's footer. Only the platform operator changes "
                    "it."))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")

    def __str__(self) -> str:
        return self.name

    @property
    def primary_host(self) -> str | None:
        domain = next((d for d in self.domains.all() if d.is_primary), None)
        return domain.host if domain else None

    primary_host.fget.short_description = _("primary host")  # the admin's column header

    def url(self, path: str = "/") -> str:
        """Absolute URL on the tenant's primary host, for emails and links between storefronts."""
        host = self.primary_host or f"{self.slug}{settings.TENANT_DEV_HOST_SUFFIX}"
        port = f":{settings.SITE_PORT}" if settings.SITE_PORT else ""
        return f"{settings.SITE_SCHEME}://{host}{port}{path}"


class Domain(models.Model):
    """A host name that serves one tenant's storefront. Exactly one per tenant is primary; others are aliases.

    The routing table is read before any tenant is known, so it is deliberately not tenant-scoped.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="domains")
    host = models.CharField(_("host"), max_length=253, unique=True, validators=[hostname_validator])
    is_primary = models.BooleanField(_("primary"), default=False)

    class Meta:
        ordering = ["-is_primary", "host"]
        verbose_name = _("domain")
        verbose_name_plural = _("domains")
        constraints = [
            models.UniqueConstraint(fields=["tenant"], condition=models.Q(is_primary=True),
                                    name="one_primary_domain_per_tenant"),
        ]

    def __str__(self) -> str:
        return self.host

    def clean(self):
        super().clean()
        if self.host:
            try:
                validate_storefront_host(self.host, tenant_id=self.tenant_id)
            except ValidationError as exc:
                raise ValidationError({"host": exc}) from exc


class TenantOwned(models.Model):
    """Base of every tenant-owned table: a tenant column and a manager that refuses to run outside a scope."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="%(app_label)s_%(class)s_set",
                               editable=False)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        abstract = True

    def charge_step_check(self, field: str) -> None:
        """A price held in ``field`` must be chargeable in the storefront's currency (``money.CHARGE_STEPS``)."""
        if self.tenant_id is not None:
            charge_step_check(getattr(self, field), self.tenant.currency, field=field)


class AuditLog(models.Model):
    """Who did what, written in the same transaction as the change. Platform actions have no tenant."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+", verbose_name=_("done by"))
    action = models.CharField(_("action"), max_length=64)
    target_type = models.CharField(_("target type"), max_length=64, blank=True)
    target_id = models.CharField(_("target ID"), max_length=64, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("audit log")
        verbose_name_plural = _("audit logs")

    def __str__(self) -> str:
        return describe(self.action)
