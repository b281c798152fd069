"""The operator's admin on the platform host opens every storefront's rows (platform scope). Editing one
storefront's row there must neither link it to another storefront's rows nor fail with a 500."""
import pytest
from django_scopes import scope, scopes_disabled

from catalog.models import LearningPath, PathStep
from tests.conftest import host_client, operator_client
from tests.factories import catalog_item

pytestmark = pytest.mark.django_db


def _path_form(path, **rows):
    data = {"title": path.title, "slug": path.slug, "description": "", "is_published": "on",
            "steps-TOTAL_FORMS": "1", "steps-INITIAL_FORMS": "0", "steps-MIN_NUM_FORMS": "0",
            "steps-MAX_NUM_FORMS": "1000", "steps-0-id": "", "steps-0-path": str(path.pk),
            "steps-0-position": "0", "steps-0-note": ""}
    data.update(rows)
    return data


@pytest.fixture
def alpha_path(tenant_a):
    with scope(tenant=tenant_a):
        return LearningPath.objects.create(tenant=tenant_a, title="Alpha Path", slug="alpha-path", is_published=True)


def test_operator_change_form_offers_only_the_rows_own_storefronts_items(tenant_a, tenant_b, alpha_path):
    catalog_item(tenant_a, title="Alpha Basics")
    catalog_item(tenant_b, title="Beta Secret Course")
    page = operator_client().get(f"/admin/catalog/learningpath/{alpha_path.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Alpha Basics" in body
    assert "Beta Secret Course" not in body, "the step's item choices list another storefront's items"


def test_operator_item_form_offers_only_the_items_own_storefronts_categories(tenant_a, tenant_b):
    from catalog.models import Category

    ours = catalog_item(tenant_a, title="Alpha Basics")
    with scopes_disabled():
        Category.objects.create(tenant=tenant_a, name="Alpha Maths", slug="maths")
        Category.objects.create(tenant=tenant_b, name="Beta Secrets", slug="secrets")
    body = operator_client().get(f"/admin/catalog/contentitem/{ours.pk}/change/").content.decode()
    assert "Alpha Maths" in body and "Beta Secrets" not in body


def test_operator_cannot_put_another_storefronts_item_on_a_learning_path(tenant_a, tenant_b, alpha_path):
    ours = catalog_item(tenant_a, title="Alpha Basics")
    theirs = catalog_item(tenant_b, title="Beta Secret Course")
    with scope(tenant=tenant_a):
        step = PathStep.objects.create(tenant=tenant_a, path=alpha_path, item=ours, position=0)
    client = operator_client()
    client.raise_request_exception = False
    client.post(f"/admin/catalog/learningpath/{alpha_path.pk}/change/", _path_form(alpha_path, **{
        "steps-INITIAL_FORMS": "1", "steps-0-id": str(step.pk), "steps-0-item": str(theirs.pk)}))
    with scopes_disabled():
        crossed = list(PathStep.objects.filter(path=alpha_path, item__tenant=tenant_b).values_list("pk", flat=True))
    assert crossed == [], "a step of Alpha's path now points at Beta's item"
    assert "Beta Secret Course" not in host_client("alpha.test").get("/paths/alpha-path/").content.decode()


def test_operator_adding_a_step_to_a_storefronts_path_saves_it_in_that_storefront(tenant_a, alpha_path):
    ours = catalog_item(tenant_a, title="Alpha Basics")
    client = operator_client()
    client.raise_request_exception = False
    response = client.post(f"/admin/catalog/learningpath/{alpha_path.pk}/change/", _path_form(alpha_path, **{
        "steps-0-item": str(ours.pk)}))
    assert response.status_code < 500, "adding an inline row on the platform host fails (tenant None)"
    with scopes_disabled():
        assert list(PathStep.objects.filter(path=alpha_path).values_list("tenant_id", "item_id")) == [
            (tenant_a.pk, ours.pk)]


def test_operator_saves_a_storefronts_bundle_on_the_platform_host(tenant_a):
    from catalog.models import Bundle

    item = catalog_item(tenant_a, title="Alpha Basics", price=1000)
    with scope(tenant=tenant_a):
        bundle = Bundle.objects.create(tenant=tenant_a, title="Alpha Pack", slug="alpha-pack", price=1500)
        bundle.items.add(item)
    client = operator_client()
    client.raise_request_exception = False
    response = client.post(f"/admin/catalog/bundle/{bundle.pk}/change/", {
        "title": "Alpha Pack", "slug": "alpha-pack", "description": "", "price": "12.00", "items": [str(item.pk)],
        "is_published": "on"})
    assert response.status_code == 302, f"status {response.status_code}"
    with scope(tenant=tenant_a):
        bundle.refresh_from_db()
    assert bundle.price == 1200


def test_operator_edits_an_item_whose_slug_another_storefront_also_uses(tenant_a, tenant_b):
    """Slugs are unique per storefront (item_slug_per_tenant): Beta having "intro" too is no clash for Alpha's."""
    from django.urls import reverse

    from tests.catalog.test_admin import item_form

    ours = catalog_item(tenant_a, title="Intro", slug="intro", published=False)
    catalog_item(tenant_b, title="Their Intro", slug="intro", published=False)
    client = operator_client()
    client.raise_request_exception = False
    response = client.post(reverse("admin:catalog_contentitem_change", args=[ours.pk]),
                           item_form(ours, title="Intro, revised"))
    assert response.status_code == 302, "refused: " + (
        "another item on this storefront already uses this slug"
        if "already uses this slug" in response.content.decode() else str(response.status_code))
    with scope(tenant=tenant_a):
        ours.refresh_from_db()
    assert ours.title == "Intro, revised"
