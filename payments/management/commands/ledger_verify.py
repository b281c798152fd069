from catalog.selectors import published_files_check
from marketplace.models import Tenant
from marketplace.tenancy import TenantCommand
from payments.ledger import ledger_verify


class Command(TenantCommand):
    help = ("Recompute each storefront's ledger hash chain, deactivated storefronts' too, and report the first broken "
            "link (exit 1 if any); with --files, check the published media files too.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", action="append", dest="tenant_slugs", metavar="SLUG",
                            help="Verify this storefront only (repeatable). Default: every storefront, deactivated "
                                 "ones too.")
        parser.add_argument("--files", action="store_true",
                            help="Also read every media and captions file a published version records the SHA-256 "
                                 "of, and report those missing from storage or changed since.")

    def select_tenants(self, slugs: list[str] | None) -> list[Tenant]:
        """Every storefront by default, not only the active ones: a storefront with a ledger is deactivated, never
        deleted, and keeps its books, which its payees' statements and the platform's published heads still vouch
        for."""
        if slugs:
            return super().select_tenants(slugs)
        return list(Tenant.objects.order_by("slug"))

    def before_tenants(self, **options):
        self.broken = 0

    def handle_tenant(self, tenant, **options):
        result = ledger_verify(tenant=tenant)
        if result.ok:
            self.stdout.write(f"{tenant.slug}: {result.entries} entries verify; head {result.head}")
        else:
            self.broken += 1
            self.stdout.write(self.style.ERROR(
                f"{tenant.slug}: broken at entry #{result.broken_at}: {result.problem}"))
        if options["files"]:
            problems = published_files_check()
            for name, problem in problems:
                self.stdout.write(self.style.ERROR(f"{tenant.slug}: {name} is {problem} since it was published"))
            self.broken += bool(problems)
            if not problems:
                self.stdout.write(f"{tenant.slug}: published files match their digests")

    def after_tenants(self, **options):
        if self.broken:
            raise SystemExit(1)
