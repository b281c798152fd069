"""The runs chart (admin → Recommender runs) tells every model apart: each has its own colour, kept from chart to
chart, and its own line dash and marker, which its legend shows too, for readers who do not tell colours apart."""

import xml.etree.ElementTree as ET
from datetime import date

from recommender.charts import metrics_chart
from recommender.engine.registry import MODEL_CLASSES
from recommender.models import FitRun

MODELS = list(MODEL_CLASSES)  # every model a run compares, the hybrid and the popularity baseline included
SVG = "{http://www.w3.org/2000/svg}"
MARKERS = {f"{SVG}circle", f"{SVG}rect", f"{SVG}polygon"}


def runs(models) -> list[FitRun]:
    return [FitRun(run_date=date(2026, 11, day), winner=models[0], served=True,
                   results=[{"model": name, "ndcg@10": 0.01 * (n + day)} for n, name in enumerate(models)])
            for day in (1, 2, 3)]


def drawn(models) -> tuple[dict, dict]:
    """The chart's lines (colour, dash) by the model its points name, and its legend's samples (colour, dash,
    marker) by the model named beside them."""
    svg = ET.fromstring(str(metrics_chart(runs(models))))  # noqa: S314 -- our own chart
    lines, legend, line, sample = {}, {}, None, None
    for element in svg:
        style = (element.get("stroke"), element.get("stroke-dasharray"))
        if element.tag == f"{SVG}polyline":
            line = style
        elif element.tag in MARKERS and element.find(f"{SVG}title") is not None:
            model = element.find(f"{SVG}title").text.split()[0]
            if line is not None:
                lines[model], line = line, None
        elif element.tag == f"{SVG}line" and element.get("stroke") != "#999":  # not an axis
            sample = style
        elif element.tag in MARKERS and sample is not None:
            sample = (*sample, element.tag)
        elif element.tag == f"{SVG}text" and sample is not None:
            legend[element.text], sample = sample, None
    return lines, legend


def test_every_model_the_recommender_has_gets_a_colour_of_its_own():
    lines, legend = drawn(MODELS)
    assert sorted(lines) == sorted(legend) == sorted(MODELS)
    assert len({colour for colour, _dash in lines.values()}) == len(MODELS), lines
    assert {model: style[:2] for model, style in legend.items()} == lines  # the legend draws each line's sample


def test_a_model_keeps_its_colour_whichever_models_a_run_compared():
    every, _legend = drawn(MODELS)
    some, _legend = drawn(["als", "svd"])
    assert some == {"als": every["als"], "svd": every["svd"]}


def test_lines_and_legend_tell_the_models_apart_without_colour():
    _lines, legend = drawn(MODELS)
    assert len({(dash, marker) for _colour, dash, marker in legend.values()}) == len(MODELS)
