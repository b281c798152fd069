"""A small server-drawn SVG line chart of the runs' holdout metrics: no JavaScript, readable in any admin theme."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04"]
WIDTH, HEIGHT, PAD = 720, 260, 40


def metrics_chart(runs: list, metric: str = "ndcg@10") -> SafeString | None:
    """One line per model over the runs' dates; the served model's points are filled."""
    if not runs:
        return None
    models = sorted({row["model"] for run in runs for row in run.results})
    values = [row.get(metric) or 0.0 for run in runs for row in run.results]
    top = max(values + [0.01]) * 1.1
    step = (WIDTH - 2 * PAD) / max(len(runs) - 1, 1)

    def x(i: int) -> float:
        return PAD + i * step

    def y(v: float) -> float:
        return HEIGHT - PAD - (v / top) * (HEIGHT - 2 * PAD)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT + 20 * len(models)}" '
             f'role="img" aria-label="{escape(metric)} per run" style="max-width:{WIDTH}px;width:100%">',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>']
    for tick in range(5):
        value = top * tick / 4
        parts.append(f'<text x="{PAD - 4}" y="{y(value) + 4:.1f}" font-size="10" text-anchor="end">'
                     f'{value:.2f}</text>')
    for i, run in enumerate(runs):
        if len(runs) <= 12 or i % max(len(runs) // 12, 1) == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{HEIGHT - PAD + 14}" font-size="10" text-anchor="middle">'
                         f'{run.run_date:%m-%d}</text>')
    for n, model in enumerate(models):
        colour = COLOURS[n % len(COLOURS)]
        points = [(i, row.get(metric) or 0.0, run.winner == model and run.served) for i, run in enumerate(runs)
                  for row in run.results if row["model"] == model]
        if len(points) > 1:
            path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v, _s in points)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for i, v, served in points:
            fill = colour if served else "white"
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{fill}" stroke="{colour}">'
                         f'<title>{escape(model)} {runs[i].run_date}: {v:.4f}</title></circle>')
        parts.append(f'<rect x="{PAD}" y="{HEIGHT + 20 * n}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{PAD + 18}" y="{HEIGHT + 20 * n + 10}" font-size="12">{escape(model)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  (every interpolated text is escaped above)
