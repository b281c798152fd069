"""Build (or rebuild in place) the demo world: safe to run again, it converges on the same data."""

import io
import logging

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import encrypt
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.management import CommandError
from django.test.utils import override_settings
from tqdm import tqdm

from accounts.models import User
from accounts.services import membership_set_role
from marketplace import demo
from marketplace.demo_behaviour import seed_behaviour
from marketplace.demo_catalog import seed_catalog
from marketplace.demo_distribution import seed_distribution
from marketplace.demo_payments import seed_payments
from marketplace.models import Domain, Tenant
from marketplace.tenancy import TenantCommand


def _logo_png(initial: str, colour: str) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (160, 160), colour)
    draw = ImageDraw.Draw(image)
    draw.ellipse((20, 20, 140, 140), outline="white", width=10)
    draw.text((62, 52), initial, fill="white", font_size=56)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _person(email: str, display_name: str, *, mfa: bool, superuser: bool = False) -> User:
    user, _ = User.objects.get_or_create(email=email)
    user.display_name = display_name
    user.is_superuser = user.is_staff = superuser
    user.is_active = True
    user.set_password(demo.DEMO_PASSWORD)
    user.save()
    EmailAddress.objects.update_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
    if mfa:
        Authenticator.objects.update_or_create(user=user, type=Authenticator.Type.TOTP,
                                               defaults={"data": {"secret": encrypt(demo.DEMO_TOTP_SECRET)}})
    return user


class Command(TenantCommand):
    help = "Create the demo tenants, their people and (as later apps add them) their content. Idempotent."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--allow-demo-logins", action="store_true",
                            help="Seed even under settings that do not allow it (production): for a private trial "
                                 "of the full stack only, since every demo login is published.")

    def handle(self, *args, **options):
        if not (settings.DEMO_LOGINS_ALLOWED or options["allow_demo_logins"]):
            raise CommandError(
                "These settings do not allow the demo data: its accounts, a superuser among them, sign in with the "
                "password and TOTP secret printed in the README, so anyone who reaches this server could use them. "
                "For a private trial, run seed_demo --allow-demo-logins.")
        # The demo orders' receipts, sent when each storefront's seeding commits, would bury the logins printed at
        # the end: they stay in memory. And the tasks seeding runs in-process would each log a worker's "Task ...
        # succeeded" line over the progress bar.
        trace = logging.getLogger("celery.app.trace")
        level = trace.level
        trace.setLevel(logging.WARNING)
        try:
            with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
                return super().handle(*args, **options)
        finally:
            trace.setLevel(level)

    def select_tenants(self, slugs):
        return list(Tenant.objects.filter(slug__in=[t["slug"] for t in demo.TENANTS]).order_by("slug"))

    def before_tenants(self, **options):
        self.catalog_counts, self.payment_counts = {}, {}
        self.behaviour_counts, self.distribution_counts = {}, {}
        self.progress = tqdm(total=1 + len(demo.TENANTS) * 7, desc="seeding demo", unit="step",
                             disable=options.get("verbosity", 1) == 0)
        self.operator = _person(demo.OPERATOR_EMAIL, "Platform Operator", mfa=True, superuser=True)
        self.progress.update()
        for spec in demo.TENANTS:
            tenant, _ = Tenant.objects.update_or_create(slug=spec["slug"], defaults={
                **{key: spec[key] for key in ("name", "primary_color", "default_language", "currency", "time_zone")},
                **demo.LEGAL[spec["slug"]]})
            if not tenant.logo:
                tenant.logo.save(f"{tenant.slug}.png", ContentFile(_logo_png(tenant.slug[0].upper(),
                                                                             tenant.primary_color)))
            for index, host in enumerate(spec["hosts"]):
                Domain.objects.update_or_create(host=host, defaults={"tenant": tenant, "is_primary": index == 0})
            self.progress.update()

    def handle_tenant(self, tenant, **options):
        self.progress.set_description(f"{tenant.slug}: people")
        people = {}
        for email, name, role in demo.people_of(tenant.slug):
            people[email] = user = _person(email, name, mfa=role in ("owner", "staff"))
            membership_set_role(tenant=tenant, user=user, role=role, actor=self.operator)
        self.progress.update()
        self.progress.set_description(f"{tenant.slug}: catalog")
        self.catalog_counts[tenant.slug] = seed_catalog(tenant=tenant, actor=people[f"staff@{tenant.slug}.demo"],
                                                        people=people)
        self.progress.update()
        self.progress.set_description(f"{tenant.slug}: orders")
        self.payment_counts[tenant.slug] = seed_payments(tenant=tenant, actor=people[f"staff@{tenant.slug}.demo"],
                                                         people=people)
        self.progress.update()
        self.progress.set_description(f"{tenant.slug}: behaviour")
        self.behaviour_counts[tenant.slug] = seed_behaviour(tenant=tenant, people=people)
        self.progress.update()
        self.progress.set_description(f"{tenant.slug}: distribution")
        self.distribution_counts[tenant.slug] = seed_distribution(tenant=tenant,
                                                                  actor=people[f"staff@{tenant.slug}.demo"])
        self.progress.update()

    def after_tenants(self, **options):
        from recommender.fitting import fit_run

        self.runs = {}
        for tenant in self.select_tenants(None):
            # The nightly fit, now, so that the storefronts open with real recommendations (its own phases commit).
            self.progress.set_description(f"{tenant.slug}: recommender fit")
            self.runs[tenant.slug] = fit_run(tenant=tenant, force=True)
            self.progress.update()
        self.progress.close()
        port = f":{settings.SITE_PORT}" if settings.SITE_PORT else ""
        out = self.stdout.write
        out(self.style.SUCCESS("\nDemo data is ready."))
        out(f"  Platform admin:  {settings.SITE_SCHEME}://localhost{port}/admin/   {demo.OPERATOR_EMAIL}")
        for spec in demo.TENANTS:
            base = f"{settings.SITE_SCHEME}://{spec['hosts'][0]}{port}"
            out(f"  {spec['name']}:  {base}/   admin: {base}/admin/")
            counts = self.catalog_counts.get(spec["slug"])
            if counts:
                kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(counts["by_kind"].items()))
                languages = ", ".join(f"{n} {language}" for language, n in sorted(counts["by_language"].items()))
                out(f"      catalog: {counts['items']} items ({kinds}; {languages}), {counts['lessons']} lessons, "
                    f"{counts['bundles']} bundles, {counts['paths']} learning paths")
            money = self.payment_counts.get(spec["slug"])
            if money:
                out(f"      payments: {money['orders']} demo orders (sandbox provider), coupon WELCOME10, promoter "
                    f"learner2@{spec['slug']}.demo with referral code {money['promoter']}")
            pushed = self.distribution_counts.get(spec["slug"])
            if pushed:
                feeds = ", ".join(f"{base}/feeds/{code}.rss" for code in pushed["feeds"])
                out(f"      distribution: {pushed['channels']} channels (feed {feeds}; a Zhihu column whose export "
                    "packages wait in the admin's delivery log)")
            run = self.runs.get(spec["slug"])
            if run:
                out(f"      recommender: {self.behaviour_counts.get(spec['slug'], 0)} behaviour events; tonight's "
                    f"fit served {run.winner if run.served else 'popularity'} "
                    f"(NDCG@10 {run.metric(run.winner, 'ndcg@10') or 0:.3f} on the holdout)")
            out(f"      owner@{spec['slug']}.demo, staff@{spec['slug']}.demo, creator1@{spec['slug']}.demo, "
                f"learner1@{spec['slug']}.demo")
        out(f"  Learner on both storefronts: {demo.SHARED_LEARNER_EMAIL}")
        out(f"  Password for every demo account: {demo.DEMO_PASSWORD}")
        out(f"  Operator, owners and staff sign in with TOTP: secret {demo.DEMO_TOTP_SECRET} "
            "(any authenticator app), or run `python manage.py demo_totp` for the current code.")
