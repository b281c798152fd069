"""A small server-drawn SVG line chart of the runs' holdout metrics: no JavaScript, readable in any admin theme."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# One colour per model, each at least 3:1 against white (WCAG 1.4.11); grey goes to the first model, the popularity
# baseline. There are more colours than models, so no two models share one.
COLOURS = ["#4b5563", "#2563eb", "#ea580c", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#db2777", "#a16207",
           "#78350f"]
# Lines and markers tell the models apart without colour too: (n % 4, n % 3) differs for any two of the first 12.
DASHES = ["", "8 4", "2 3", "8 3 2 3"]
MARKERS = ["circle", "square", "triangle"]
WIDTH, HEIGHT, PAD = 720, 260, 40


@dataclass(frozen=True)
class Style:
    colour: str
    dash: str
    marker: str


def model_styles(models) -> dict[str, Style]:
    """Each model's colour, line dash and marker, by the registry's order of models (then any other name, sorted),
    so a model keeps its style whichever models a run compared."""
    from .engine.registry import MODEL_CLASSES  # not at start-up: the engine brings numpy, SciPy and scikit-learn

    known = list(MODEL_CLASSES)
    order = known + sorted(set(models) - set(known))
    return {name: Style(COLOURS[n % len(COLOURS)], DASHES[n % len(DASHES)], MARKERS[n % len(MARKERS)])
            for n, name in enumerate(order) if name in models}


def _marker(style: Style, cx: float, cy: float, fill: str, title: str = "") -> str:
    tip = f"<title>{title}</title>" if title else ""
    paint = f'fill="{fill}" stroke="{style.colour}" stroke-width="1.5"'
    if style.marker == "square":
        return f'<rect x="{cx - 3.5:.1f}" y="{cy - 3.5:.1f}" width="7" height="7" {paint}>{tip}</rect>'
    if style.marker == "triangle":
        points = f"{cx:.1f},{cy - 4.5:.1f} {cx + 4.5:.1f},{cy + 3.5:.1f} {cx - 4.5:.1f},{cy + 3.5:.1f}"
        return f'<polygon points="{points}" {paint}>{tip}</polygon>'
    return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" {paint}>{tip}</circle>'


def _dash(style: Style) -> str:
    return f' stroke-dasharray="{style.dash}"' if style.dash else ""


def metrics_chart(runs: list, metric: str = "ndcg@10") -> SafeString | None:
    """One line per model over the runs' dates; the served model's points are filled."""
    if not runs:
        return None
    models = sorted({row["model"] for run in runs for row in run.results})
    styles = model_styles(models)
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
        style = styles[model]
        points = [(i, row.get(metric) or 0.0, run.winner == model and run.served) for i, run in enumerate(runs)
                  for row in run.results if row["model"] == model]
        if len(points) > 1:
            path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v, _s in points)
            parts.append(f'<polyline fill="none" stroke="{style.colour}" stroke-width="2"{_dash(style)} '
                         f'points="{path}"/>')
        for i, v, served in points:
            parts.append(_marker(style, x(i), y(v), style.colour if served else "white",
                                 f"{escape(model)} {runs[i].run_date}: {v:.4f}"))
        # The legend shows each model's line and marker, not only its colour.
        row_y = HEIGHT + 20 * n + 6
        parts.append(f'<line x1="{PAD}" y1="{row_y}" x2="{PAD + 28}" y2="{row_y}" stroke="{style.colour}" '
                     f'stroke-width="2"{_dash(style)}/>')
        parts.append(_marker(style, PAD + 14, row_y, "white"))
        parts.append(f'<text x="{PAD + 36}" y="{row_y + 4}" font-size="12">{escape(model)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  (every interpolated text is escaped above)
