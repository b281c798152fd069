"""WCAG 2.1 AA basics of the storefront's shared layout and forms."""

import re
from pathlib import Path

import pytest

from tests.conftest import host_client
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db

CSS = Path(__file__).parents[2] / "marketplace" / "static" / "css" / "site.css"


def _contrast(foreground: str, background: str = "#ffffff") -> float:
    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_personalisation_checkbox_is_described_by_its_help(tenant_a):
    page = host_client("alpha.test", member(tenant_a)).get("/recommendations/settings/").content.decode()
    described_by = re.search(r'<input type="checkbox" name="personalised"[^>]*aria-describedby="([^"]+)"', page)
    assert described_by
    for target in described_by.group(1).split():
        assert re.search(rf'<p class="help" id="{target}">Off: you see popular', page), target


def test_the_language_menu_names_each_language_in_its_own_language_and_waits_for_a_button(tenant_a):
    page = host_client("alpha.test").get("/").content.decode()
    form = re.search(r'<form class="lang-switch".*?</form>', page, re.S).group(0)
    assert re.search(r'<option value="zh-hans" lang="zh-hans"[^>]*>简体中文</option>', form)
    assert re.search(r'<option value="en" lang="en"[^>]*>English</option>', form)
    # Choosing an option changes nothing by itself (WCAG 3.2.2): the button switches.
    assert "onchange" not in form
    assert re.search(r'<button type="submit"[^>]*>Go</button>', form)


def test_the_browse_page_headings_go_down_one_level_at_a_time(tenant_a):
    catalog_item(tenant_a, title="Something")
    for path in ("/browse/", "/browse/?q=something"):
        page = host_client("alpha.test").get(path).content.decode()
        levels = [int(n) for n in re.findall(r"<h([1-6])[\s>]", page)]
        assert levels[0] == 1 and all(b <= a + 1 for a, b in zip(levels, levels[1:], strict=False)), (path, levels)


def test_form_field_borders_stand_out_from_the_page():
    """Non-text contrast (WCAG 1.4.11): the border that shows where to type needs 3:1 against white."""
    rules = re.findall(r"([^{}]*input[^{}]*)\{([^}]*)\}", CSS.read_text())
    borders = [re.search(r"border:[^;]*(#[0-9a-fA-F]{6})", body) for _selector, body in rules]
    colours = [match.group(1) for match in borders if match]
    assert colours
    assert all(_contrast(colour) >= 3 for colour in colours), colours
