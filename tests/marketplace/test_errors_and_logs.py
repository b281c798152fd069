import json
import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework import serializers
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from marketplace.errors import ApplicationError
from marketplace.logging import ContextFilter
from marketplace.tenancy import activate
from tests.conftest import host_client


class Failing(APIView):
    authentication_classes = permission_classes = ()

    def get(self, request):
        raise ApplicationError("Coupon expired.", code="coupon_expired", extra={"coupon": "SPRING"})

    def post(self, request):
        class S(serializers.Serializer):
            quantity = serializers.IntegerField(min_value=1)

        S(data=request.data).is_valid(raise_exception=True)


def test_application_error_becomes_a_machine_readable_4xx():
    response = Failing.as_view()(APIRequestFactory().get("/"))
    assert response.status_code == 400
    assert response.data == {"error": {"code": "coupon_expired", "message": "Coupon expired.",
                                       "extra": {"coupon": "SPRING"}}}


def test_validation_error_names_the_field():
    response = Failing.as_view()(APIRequestFactory().post("/", {"quantity": 0}, format="json"))
    assert response.status_code == 400
    assert response.data["error"]["code"] == "validation_error"
    assert "quantity" in response.data["error"]["extra"]["fields"]


def test_request_id_is_echoed_or_made(tenant_a):
    client = host_client("alpha.test")
    assert client.get("/", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    made = client.get("/", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert made != "bad id with spaces" and len(made) == 32


def test_log_records_carry_tenant_and_request_id(tenant_a):
    from pythonjsonlogger.json import JsonFormatter

    record = logging.LogRecord("zhiku", logging.INFO, __file__, 1, "order paid", None, None)
    with activate(tenant_a):
        ContextFilter().filter(record)
    line = json.loads(JsonFormatter("%(message)s %(request_id)s %(tenant)s").format(record))
    assert line == {"message": "order paid", "request_id": "-", "tenant": "alpha"}


def test_a_nul_character_in_the_address_is_a_bad_request_not_a_server_error(tenant_a):
    """PostgreSQL holds no NUL in text: an address carrying one is refused before any lookup could fail on it."""
    from accounts.models import Role
    from tests.factories import member

    learner = host_client("alpha.test", member(tenant_a))
    for url in ("/checkout/?item=%00", "/checkout/?bundle=a%00b", "/checkout/?plan=%00", "/orders/%00/",
                "/search/?q=%00", "/checkout/?%00=1"):
        assert learner.get(url).status_code == 400, url
    staff = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    assert staff.get("/admin/payments/order/?q=%00").status_code == 400
    assert learner.get("/checkout/?item=no-such-course").status_code == 404  # an ordinary miss stays a 404


def test_a_nul_character_in_a_submitted_form_is_a_bad_request_and_changes_nothing(tenant_a):
    from django.urls import reverse
    from django_scopes import scope

    from accounts.models import Role
    from catalog import services
    from tests.factories import catalog_item, member

    learner = host_client("alpha.test", member(tenant_a))
    assert learner.post("/checkout/", {"item": "\x00", "key": "k", "pay": "1"}).status_code == 400
    item = catalog_item(tenant_a, title="In Review", published=False)
    reviewer = member(tenant_a, Role.STAFF, mfa=True)
    with scope(tenant=tenant_a):
        services.item_submit(item=item, actor=reviewer)
    response = host_client("alpha.test", reviewer).post(
        reverse("admin:catalog_contentitem_workflow", args=[item.pk, "reject"]), {"reason": "Bad\x00reason"})
    assert response.status_code == 400
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        assert item.status == "in_review"
    # A file's bytes are its own business: only the form's text fields are looked at.
    upload = SimpleUploadedFile("items.csv", b"Title\nA\x00B\n", content_type="text/csv")
    response = host_client("alpha.test", reviewer).post(reverse("admin:catalog_contentitem_import"), {"file": upload})
    assert response.status_code == 200 and "is it really a CSV file?" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["day__year=99999999999", "day__year=9999", "day__year=9999&day__month=12",
                                   "day__year=9999&day__month=12&day__day=31", "day__year=abc"])
def test_a_date_drill_down_out_of_range_is_a_bad_lookup_not_a_500(tenant_a, query):
    from accounts.models import Role
    from tests.factories import member

    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    response = client.get(f"/admin/distribution/allocation/?{query}")
    assert response.status_code == 302 and response.url.endswith("?e=1")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/admin/payments/order/?created_at__year=99999",
                                 "/admin/catalog/contentitem/?created_at__year=99999",
                                 "/admin/marketplace/auditlog/?created_at__year=0"])
def test_a_year_no_date_holds_typed_as_a_filter_is_a_bad_lookup_not_a_500(tenant_a, url):
    from accounts.models import Role
    from tests.factories import catalog_item, member

    catalog_item(tenant_a, title="Something")
    response = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True)).get(url)
    assert response.status_code == 302 and response.url.endswith("?e=1")


@pytest.fixture
def chinese_storefront(tenant_a):
    tenant_a.name, tenant_a.default_language = "莲花书院", "zh-hans"
    tenant_a.save(update_fields=["name", "default_language"])
    return tenant_a


@pytest.mark.django_db
def test_a_mangled_link_gets_the_storefronts_own_page_in_its_language(chinese_storefront):
    response = host_client("alpha.test").get("/browse/?q=%00")
    page = response.content.decode()
    assert response.status_code == 400 and "莲花书院" in page and 'lang="zh-hans"' in page and "链接" in page


@pytest.mark.django_db
def test_a_server_error_gets_the_storefronts_own_page_without_touching_the_database(chinese_storefront):
    """The database itself failing: the page must not read it again (on PostgreSQL the transaction is aborted)."""
    from django.db import connection
    from django.test import Client

    with connection.cursor() as cursor:  # undone with the test's transaction
        cursor.execute("ALTER TABLE catalog_contentitem RENAME TO catalog_contentitem_gone")
    response = Client(HTTP_HOST="alpha.test", raise_request_exception=False).get("/")
    page = response.content.decode()
    assert response.status_code == 500 and "莲花书院" in page and 'lang="zh-hans"' in page
    assert "Server Error" not in page


@pytest.mark.django_db
def test_the_no_such_storefront_page_speaks_the_visitors_language_not_the_previous_visitors(chinese_storefront):
    from django.test import Client

    assert 'lang="en"' in Client(HTTP_HOST="nowhere.test").get("/").content.decode()
    Client(HTTP_HOST="alpha.test").get("/")  # a Chinese page served just before, by the same thread
    assert 'lang="en"' in Client(HTTP_HOST="nowhere.test").get("/").content.decode()
    chinese = Client(HTTP_HOST="nowhere.test", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").get("/").content.decode()
    assert 'lang="zh-hans"' in chinese
