import re

from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from django_scopes import scopes_disabled

from accounts.models import Membership, User
from catalog.models import (
    Bundle,
    Category,
    ContentItem,
    Creator,
    ItemCreator,
    ItemProgress,
    ItemVersion,
    LearningPath,
    Lesson,
    LessonProgress,
    PathStep,
    Review,
    Section,
    Tag,
)
from catalog.selectors import items_search
from catalog.storage import private_storage
from marketplace import demo
from marketplace.demo_catalog import DATA_ITEM, PYTHON_COURSE
from marketplace.models import Domain, Tenant
from payments.models import Entitlement
from recommender.models import Event
from tests.conftest import host_client


def snapshot():
    with scopes_disabled():
        return (Tenant.objects.count(), Domain.objects.count(), User.objects.count(),
                sorted(Membership.objects.values_list("tenant__slug", "user__email", "role")))


def catalog_snapshot():
    with scopes_disabled():
        return {model.__name__: model.objects.count() for model in (
            ContentItem, Section, Lesson, ItemVersion, ItemCreator, Creator, Category, Tag, Bundle, LearningPath,
            PathStep, Entitlement, ItemProgress, LessonProgress, Review)} | {
            "learners": sorted(ContentItem.objects.values_list("slug", "learner_count", "rating_count")),
            "bundle_items": sorted(Bundle.items.through.objects.values_list("bundle__slug", "contentitem__slug")),
        }


def test_seed_demo_is_idempotent_and_builds_branded_storefronts(db, capsys):
    call_command("seed_demo", verbosity=0)
    first, first_catalog = snapshot(), catalog_snapshot()
    with scopes_disabled():
        first_events = Event.objects.count()
    call_command("seed_demo", verbosity=0)
    assert snapshot() == first
    # The second run adds no catalog rows, changes no counters and records no behaviour twice.
    assert catalog_snapshot() == first_catalog
    with scopes_disabled():
        assert Event.objects.count() == first_events
    assert first_catalog["ContentItem"] >= 150 and first_catalog["ItemVersion"] == first_catalog["ContentItem"]
    assert first[0] >= 2
    out = capsys.readouterr().out
    assert demo.DEMO_PASSWORD in out and "http://acme.localhost" in out

    shared = User.objects.get(email=demo.SHARED_LEARNER_EMAIL)
    with scopes_disabled():
        assert Membership.objects.filter(user=shared).count() == len(demo.TENANTS)
    for spec in demo.TENANTS:
        tenant = Tenant.objects.get(slug=spec["slug"])
        assert tenant.logo
        page = host_client(spec["hosts"][0]).get("/")
        assert page.status_code == 200 and tenant.primary_color.encode() in page.content
        owner = User.objects.get(email=f"owner@{spec['slug']}.demo")
        assert owner.check_password(demo.DEMO_PASSWORD)
        assert host_client(spec["hosts"][0], owner).get("/admin/").status_code == 200


def test_seed_demo_runs_again_after_the_team_archives_a_reviewed_demo_item(db):
    from django_scopes import scope

    from catalog.services import item_archive

    call_command("seed_demo", verbosity=0)
    tenant = Tenant.objects.get(slug="acme")
    with scope(tenant=tenant):
        reviewed = Review.objects.filter(item__price=0).order_by("id").first().item
        item_archive(item=reviewed, actor=User.objects.get(email=f"staff@{tenant.slug}.demo"))
    call_command("seed_demo", verbosity=0)
    with scope(tenant=tenant):
        assert ContentItem.objects.get(pk=reviewed.pk).status == ContentItem.Status.ARCHIVED


def test_seed_demo_builds_a_bilingual_catalog_of_every_kind(db, capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    with scopes_disabled():
        published = ContentItem.objects.filter(status=ContentItem.Status.PUBLISHED)
        assert published.count() >= 150
        assert set(published.values_list("version", flat=True)) == {1}
        for spec in demo.TENANTS:
            tenant = Tenant.objects.get(slug=spec["slug"])
            items = published.filter(tenant=tenant)
            assert f"catalog: {items.count()} items" in out
            assert set(items.values_list("kind", flat=True)) == set(ContentItem.Kind.values)
            assert set(items.values_list("language", flat=True)) == {"en", "zh-hans"}
            # Every item carries an English and a Chinese title between its title and subtitle.
            for title, subtitle in items.values_list("title", "subtitle"):
                both = title + subtitle
                assert re.search(r"[\u4e00-\u9fff]", both) and re.search(r"[A-Za-z]{3}", both), both
                assert not re.search(r"\b(\w+) \1\b", both), both  # "The The Silk Road Handbook"
            assert items.filter(price=0).exists() and items.exclude(price=0).exists()
            assert items.filter(is_featured=True).exists()
            assert items.filter(kind="live", starts_at__gt=timezone.now()).exists()

            bundle = Bundle.objects.filter(tenant=tenant, is_published=True).first()
            assert bundle is not None and 3 <= bundle.items.count() <= 5
            assert bundle.price < sum(bundle.items.values_list("price", flat=True))
            # Its description opens in the storefront's language, as its title does.
            chinese = tenant.default_language == "zh-hans"
            assert bool(re.match(r"[\u4e00-\u9fff]|\d+ 件", bundle.description)) == chinese, bundle.description
            path = LearningPath.objects.filter(tenant=tenant, is_published=True).first()
            assert path is not None and 4 <= path.steps.count() <= 6

            for course in items.filter(kind="course"):
                lessons = list(course.lessons.all())
                assert len(lessons) >= 4 and lessons[0].is_preview, course.slug
            python = items.get(slug=PYTHON_COURSE)
            assert python.language == "en" and "Python" in python.title and python.price > 0
            preview = python.lessons.first()
            assert preview.is_preview and preview.kind in ("audio", "video") and preview.media
            data = items.get(slug=DATA_ITEM)
            assert data.language == "zh-hans" and "数据" in data.title
            assert items_search(items, "Python").filter(slug=PYTHON_COURSE).exists()
            assert items_search(items, "数据").filter(slug=DATA_ITEM).exists()

            shared = User.objects.get(email=demo.SHARED_LEARNER_EMAIL)
            assert Entitlement.objects.filter(tenant=tenant, user=shared, bundle__isnull=False).exists()
            assert ItemProgress.objects.filter(tenant=tenant, user=shared).exists()
            assert Review.objects.filter(tenant=tenant).exists()


def test_seeded_media_are_private_files_that_exist(db):
    call_command("seed_demo", verbosity=0)
    private = ContentItem._meta.get_field("media").storage
    assert ContentItem._meta.get_field("media")._storage_callable is private_storage
    assert Lesson._meta.get_field("media")._storage_callable is private_storage
    with scopes_disabled():
        files = [item.media for item in ContentItem.objects.exclude(media="")]
        files += [lesson.media for lesson in Lesson.objects.exclude(media="")]
        kinds = set(ContentItem.objects.exclude(media="").values_list("kind", flat=True))
        covers = [item.cover for item in ContentItem.objects.all()]
    assert kinds >= {"audio", "video", "ebook", "live"}
    for media in files:
        assert media.storage is private and private.exists(media.name), media.name
        assert not default_storage.exists(media.name)
    headers = {name: private.open(name).read(4) for name in {media.name for media in files}}
    assert set(headers.values()) == {b"RIFF", b"%PDF"}
    assert all(cover and default_storage.exists(cover.name) for cover in covers)


def test_production_settings_refuse_the_demo_logins_unless_asked(db, settings):
    import pytest
    from django.core.management import CommandError

    settings.DEMO_LOGINS_ALLOWED = False  # as marketplace.settings.production
    with pytest.raises(CommandError, match="--allow-demo-logins"):
        call_command("seed_demo", verbosity=0)
    assert snapshot() == (0, 0, 0, [])
    assert not User.objects.filter(is_superuser=True).exists()
