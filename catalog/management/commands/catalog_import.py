"""Import another platform's course export into one storefront's catalog from the command line."""

from pathlib import Path

from django.core.management.base import CommandError
from tqdm import tqdm

from catalog.importing import (
    FIELDS,
    ImportOptions,
    catalog_import_dry_run,
    catalog_import_run,
    import_file_read,
    import_mapping_get,
)
from marketplace.errors import ApplicationError
from marketplace.tenancy import TenantCommand


class Command(TenantCommand):
    help = ("Import content items (as drafts) from a CSV file, using the storefront's saved column mapping for "
            "this header set or one suggested from the column names. Bad rows are listed with their reasons.")

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("file", help="The CSV file (UTF-8 or GBK, any common delimiter).")
        parser.add_argument("--dry-run", action="store_true", help="Show what would happen; write nothing.")
        parser.add_argument("--create-categories", action="store_true",
                            help="Create categories the storefront does not have (otherwise those rows are errors).")
        parser.add_argument("--update-existing", action="store_true",
                            help="Update items matched by external id or slug (otherwise they are duplicates).")

    def before_tenants(self, **options):
        if len(options.get("tenant_slugs") or []) != 1:
            raise CommandError("Name exactly one storefront with --tenant SLUG.")
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            self.table = import_file_read(data=path.read_bytes())
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc

    def handle_tenant(self, tenant, **options):
        choice = import_mapping_get(tenant=tenant, headers=self.table.headers)
        source = "saved" if choice.saved else "suggested from the column names"
        self.stdout.write(f"Column mapping ({source}):")
        for header, target in choice.columns.items():
            self.stdout.write(f"  {header} -> {FIELDS[target] if target else '(ignored)'}")
        import_options = ImportOptions(create_missing_categories=options["create_categories"],
                                       update_existing=options["update_existing"])
        kwargs = {"tenant": tenant, "rows": self.table.rows, "mapping": choice.columns, "options": import_options,
                  "headers": self.table.headers}
        try:
            if options["dry_run"]:
                report = catalog_import_dry_run(**kwargs)
            else:
                with tqdm(total=len(self.table.rows), unit="row", desc=f"importing into {tenant.slug}",
                          disable=options.get("verbosity", 1) == 0) as bar:
                    report = catalog_import_run(actor=None, progress=lambda done, _total: bar.update(done - bar.n),
                                                **kwargs)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        totals = report.totals
        verb = "would be" if report.dry_run else "were"
        self.stdout.write(self.style.SUCCESS(
            f"{totals['rows']} rows: {totals['create']} new items and {totals['update']} updates {verb} imported; "
            f"{totals['error']} rows have errors."))
        if report.new_categories:
            self.stdout.write(f"New categories: {', '.join(report.new_categories)}")
        for row in report.errors:
            self.stdout.write(self.style.WARNING(f"  row {row.number} ({row.title or 'no title'}): "
                                                 + " ".join(row.reasons)))
