from marketplace.tenancy import TenantCommand
from payments.ledger import ledger_verify


class Command(TenantCommand):
    help = "Recompute each storefront's ledger hash chain and report the first broken link (exit 1 if any)."

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

    def after_tenants(self, **options):
        if self.broken:
            raise SystemExit(1)
