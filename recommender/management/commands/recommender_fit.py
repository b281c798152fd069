"""The nightly recommender fit by hand: ``manage.py recommender_fit [--tenant SLUG] [--date YYYY-MM-DD] [--force]``."""

from __future__ import annotations

from datetime import date

from django.core.management.base import CommandError
from django.utils import timezone
from tqdm import tqdm

from marketplace.tenancy import TenantCommand, tenant_phase
from recommender.fitting import fit_run
from recommender.models import FitRun

STEPS = ["read", "content model", "holdout and candidates", "refit", "top-N for every learner", "similar items",
         "reasons", "personas", "write"]


class Command(TenantCommand):
    help = "Fit the recommender for each storefront (or --tenant SLUG), as the nightly job does."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--date", help="Run date (default today); a date already fitted is skipped.")
        parser.add_argument("--force", action="store_true", help="Fit again even if the date was fitted.")

    def handle(self, *args, **options):
        # Not handle_tenant: the fit opens the tenant's scope itself, once per phase.
        try:
            run_date = date.fromisoformat(options["date"]) if options["date"] else timezone.localdate()
        except ValueError as exc:
            raise CommandError("--date takes YYYY-MM-DD.") from exc
        for tenant in self.select_tenants(options.get("tenant_slugs")):
            with tqdm(total=len(STEPS), desc=tenant.slug, unit="step", disable=options["verbosity"] < 1,
                      file=self.stderr._out) as bar:
                def step(name: str, bar=bar) -> None:
                    bar.set_postfix_str(name)
                    bar.update(1)

                run = fit_run(tenant=tenant, run_date=run_date, force=options["force"], progress=step)
                bar.update(bar.total - bar.n)
            if run is None:
                self.stdout.write(f"{tenant.slug}: {run_date} not fitted now: {self._why_not(tenant, run_date)}.")
                continue
            self.stdout.write(self._summary(tenant, run))

    @staticmethod
    def _why_not(tenant, run_date: date) -> str:
        """Why the date's run was not ours to do, read from its row as it is now."""
        with tenant_phase(tenant):
            run = FitRun.objects.filter(run_date=run_date).first()
        if run is not None and run.status == FitRun.Status.SUCCEEDED:
            return "it is fitted already (--force refits it)"
        if run is not None and run.status == FitRun.Status.RUNNING:
            since = timezone.localtime(run.started_at).isoformat(timespec="seconds")
            return f"another worker has been fitting it since {since} (force again once that has finished)"
        return "another worker took it over (see Fit runs in the admin)"

    @staticmethod
    def _summary(tenant, run) -> str:
        lines = [f"{tenant.slug}: {run.learners} learners x {run.items} items, {run.interactions} interactions; "
                 f"best {run.winner or '-'}; {'now serving' if run.served else 'serving unchanged'}."]
        for row in run.results:
            lines.append(f"  {row['model']:<11} NDCG@10 {row['ndcg@10']:.4f}  Recall@20 {row['recall@20']:.4f}  "
                         f"coverage@10 {row['coverage@10']:.3f}  fit {row['fit_s']:.2f}s")
        if run.note:
            lines.append(f"  {run.note}")
        return "\n".join(lines)
