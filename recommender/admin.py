"""The recommender in the storefront's admin: runs and their metrics over time, personas, A/B tests, events."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from catalog.models import ContentItem
from marketplace.admin_site import ReadOnlyAdmin, TenantScopedAdmin

from .charts import metrics_chart
from .experiments import experiment_results
from .models import Event, Experiment, FitRun, Persona


@admin.register(FitRun)
class FitRunAdmin(ReadOnlyAdmin):
    """Every nightly run with its holdout metrics; the list opens with the metrics' history as a chart."""

    list_display = ["run_date", "status", "winner", "served", "ndcg", "recall", "coverage", "learners", "items",
                    "interactions", "duration"]
    list_filter = ["status", "served"]
    fields = ["run_date", "status", "started_at", "finished_at", "learners", "items", "interactions", "winner",
              "winner_params", "served", "note", "results_table", "stages_table"]
    readonly_fields = fields
    change_list_template = "admin/recommender/fitrun/change_list.html"

    @admin.display(description="NDCG@10")
    def ndcg(self, run):
        return _number(run.metric(run.winner, "ndcg@10"))

    @admin.display(description="Recall@20")
    def recall(self, run):
        return _number(run.metric(run.winner, "recall@20"))

    @admin.display(description=_("coverage@10"))
    def coverage(self, run):
        return _number(run.metric(run.winner, "coverage@10"))

    @admin.display(description=_("duration"))
    def duration(self, run):
        if run.finished_at is None:
            return "-"
        return f"{(run.finished_at - run.started_at).total_seconds():.1f} s"

    @admin.display(description=_("holdout results"))
    def results_table(self, run):
        header = format_html("<tr><th>{}</th><th>{}</th><th>NDCG@10</th><th>Recall@20</th><th>{}</th><th>{}</th>"
                             "<th>{}</th></tr>", _("model"), _("parameters"), _("coverage@10"),
                             _("popularity bias"), _("fit seconds"))
        rows = format_html_join("", "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>"
                                    "<td>{}</td><td>{}</td></tr>",
                                ((r["model"], r.get("params", {}), _number(r.get("ndcg@10")),
                                  _number(r.get("recall@20")), _number(r.get("coverage@10")),
                                  _number(r.get("popularity_bias")), _number(r.get("fit_s"))) for r in run.results))
        return format_html("<table>{}{}</table>", header, rows)

    @admin.display(description=_("stage timings"))
    def stages_table(self, run):
        return format_html("<table>{}</table>", format_html_join(
            "", "<tr><td>{}</td><td>{} s</td><td>{} MB</td></tr>",
            ((name, stage.get("seconds"), stage.get("peak_mb")) for name, stage in run.stages.items())))

    def changelist_view(self, request, extra_context=None):
        chart = None
        if request.tenant is not None:
            from .selectors import runs_history

            chart = metrics_chart(runs_history())
        return super().changelist_view(request, {**(extra_context or {}), "chart": chart})


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


@admin.register(Persona)
class PersonaAdmin(ReadOnlyAdmin):
    """The latest run's segments (older runs' stay for comparison: filter by run)."""

    list_display = ["name", "size", "share", "top_items_list", "run"]
    list_filter = ["run"]
    fields = ["run", "name", "size", "features", "top_items_list"]
    readonly_fields = fields

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if "run__id__exact" not in request.GET:
            latest = FitRun.objects.filter(status=FitRun.Status.SUCCEEDED).order_by("-run_date").first()
            queryset = queryset.filter(run=latest)
        return queryset

    @admin.display(description=_("share of learners"))
    def share(self, persona):
        total = persona.run.learners or 1
        return f"{100 * persona.size / total:.0f} %"

    @admin.display(description=_("top items"))
    def top_items_list(self, persona):
        titles = dict(ContentItem.objects.filter(pk__in=persona.top_items).values_list("pk", "title"))
        return ", ".join(titles[pk] for pk in persona.top_items if pk in titles)


@admin.register(Experiment)
class ExperimentAdmin(TenantScopedAdmin):
    list_display = ["name", "is_active", "created_at", "arms_summary"]
    fields = ["name", "arms", "is_active", "results_table"]
    readonly_fields = ["results_table"]

    @admin.display(description=_("arms"))
    def arms_summary(self, experiment):
        return ", ".join(f"{arm['name']}: {arm['strategy']} ({arm['weight']})" for arm in experiment.arms)

    @admin.display(description=_("results"))
    def results_table(self, experiment):
        if experiment.pk is None:
            return "-"
        header = format_html("<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>"
                             "<th>{}</th></tr>", _("arm"), _("strategy"), _("learners"), _("impressions"),
                             _("clicks"), _("click-through (95% CI)"), _("buyers"),
                             _("conversion (95% CI)"))
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                                    "<td>{}</td><td>{}</td></tr>", (
            (r.name, r.strategy, r.learners, r.impressions, r.clicks, _rate(r.ctr, r.ctr_interval), r.buyers,
             _rate(r.conversion, r.conversion_interval)) for r in experiment_results(experiment=experiment)))
        return format_html("<table>{}{}</table>", header, rows)


def _rate(value: float, interval: tuple[float, float]) -> str:
    return f"{100 * value:.1f} % ({100 * interval[0]:.1f}–{100 * interval[1]:.1f})"


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "kind", "source", "user", "item", "value"]
    list_filter = ["kind", "source"]
    search_fields = ["user__email", "item__title"]
    list_select_related = ["user", "item"]
    date_hierarchy = "occurred_at"
