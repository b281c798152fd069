"""A Chinese storefront's checkout: the coupon's button is not the browse filters' button.

"Apply" is one English word for two things; the coupon's has its own translation context ("coupon"). The second
test reads the Chinese catalogue's entry for it.
"""

import re

import pytest

from tests.conftest import host_client
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def coupon_button(tenant_a):
    tenant_a.default_language, tenant_a.currency = "zh-hans", "CNY"
    tenant_a.save(update_fields=["default_language", "currency"])
    course = catalog_item(tenant_a, title="课程", price=9900, language="zh-hans")
    page = host_client("alpha.test", member(tenant_a)).get(f"/checkout/?item={course.slug}").content.decode()
    return re.search(r'<button type="submit" name="apply"[^>]*>([^<]*)</button>', page).group(1)


def test_the_coupon_button_is_not_called_filter(coupon_button):
    assert coupon_button != "筛选"


def test_the_coupon_button_says_apply_in_chinese(coupon_button):
    assert coupon_button == "应用"
