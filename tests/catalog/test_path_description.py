"""A learning path's description is Markdown, rendered and sanitised as item and bundle descriptions are."""

import importlib

import pytest
from django.apps import apps
from django_scopes import scope, scopes_disabled

from accounts.models import Role
from catalog.models import LearningPath, PathStep
from tests.conftest import host_client
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db

DESCRIPTION = "*从零开始学数据科学*\n\nFive steps. <script>alert('x')</script>"


def shown_description(page: str) -> str:
    return page.split("<h1>", 1)[1].split('<ol class="path-steps">', 1)[0]


def test_a_path_written_in_the_admin_shows_its_markdown_rendered_and_no_script(tenant_a,
                                                                               django_capture_on_commit_callbacks):
    item = catalog_item(tenant_a, title="Step One")
    staff = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post("/admin/catalog/learningpath/add/", {
            "title": "Data Path", "slug": "data-path", "description": DESCRIPTION, "is_published": "on",
            "steps-TOTAL_FORMS": "1", "steps-INITIAL_FORMS": "0", "steps-MIN_NUM_FORMS": "0",
            "steps-MAX_NUM_FORMS": "1000", "steps-0-item": str(item.pk), "steps-0-position": "0", "steps-0-note": "",
        })
    assert response.status_code == 302, response.content.decode()[:3000]
    for client in (host_client("alpha.test"), host_client("alpha.test", member(tenant_a))):
        shown = shown_description(client.get("/paths/data-path/").content.decode())
        assert "<em>从零开始学数据科学</em>" in shown and "*从零开始" not in shown
        assert "<script" not in shown and "alert" not in shown

    # An edit is rendered again.
    with scope(tenant=tenant_a):
        path = LearningPath.objects.get(slug="data-path")
        step = PathStep.objects.get(path=path)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/admin/catalog/learningpath/{path.pk}/change/", {
            "title": "Data Path", "slug": "data-path", "description": "Now **bold**.", "is_published": "on",
            "steps-TOTAL_FORMS": "1", "steps-INITIAL_FORMS": "1", "steps-MIN_NUM_FORMS": "0",
            "steps-MAX_NUM_FORMS": "1000", "steps-0-id": str(step.pk), "steps-0-path": str(path.pk),
            "steps-0-item": str(item.pk), "steps-0-position": "0", "steps-0-note": "",
        })
    assert response.status_code == 302, response.content.decode()[:3000]
    assert "<strong>bold</strong>" in shown_description(host_client("alpha.test").get("/paths/data-path/")
                                                        .content.decode())


def test_the_migration_renders_the_descriptions_of_existing_paths(tenant_a):
    with scope(tenant=tenant_a):
        LearningPath.objects.create(tenant=tenant_a, title="Old Path", slug="old-path", is_published=True,
                                    description=DESCRIPTION)
    migration = importlib.import_module("catalog.migrations.0010_learning_path_description_html")
    with scopes_disabled():
        migration.render_descriptions(apps, None)
    shown = shown_description(host_client("alpha.test").get("/paths/old-path/").content.decode())
    assert "<em>从零开始学数据科学</em>" in shown and "<script" not in shown
