"""The catalog in the tenant's admin: who sees and edits which items, and the review workflow."""

import pytest
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope

from accounts.models import Role
from catalog import services
from catalog.models import (
    Category,
    ContentItem,
    Creator,
    EditorialDecision,
    ItemCreator,
    ItemVersion,
    LearningPath,
    PathStep,
    Tag,
)
from tests.conftest import host_client
from tests.factories import catalog_creator, catalog_item, member, typed_price

pytestmark = pytest.mark.django_db


def change_url(item):
    return reverse("admin:catalog_contentitem_change", args=[item.pk])


def workflow(client, item, action, **data):
    return client.post(reverse("admin:catalog_contentitem_workflow", args=[item.pk, action]), data)


def item_form(item, **changes):
    data = {
        "kind": item.kind, "title": item.title, "subtitle": item.subtitle, "slug": item.slug,
        "language": item.language, "level": item.level, "price": typed_price(item), "description": item.description,
        "cover_alt": "", "duration_minutes": 0, "body": item.body, "external_id": "", "join_url": "",
        "starts_at_0": "", "starts_at_1": "",
    }
    for prefix in ("item_creators", "sections", "lessons"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    data.update(changes)
    return data


@pytest.fixture
def creators(tenant_a):
    ann, bob = member(tenant_a, Role.CREATOR), member(tenant_a, Role.CREATOR)
    ann_profile, bob_profile = catalog_creator(tenant_a, "Ann", ann), catalog_creator(tenant_a, "Bob", bob)
    return ann, bob, ann_profile, bob_profile


def test_a_creator_sees_and_edits_only_their_own_items(tenant_a, creators):
    ann, bob, ann_profile, bob_profile = creators
    anns = catalog_item(tenant_a, title="Ann's Draft", creators=[ann_profile], published=False)
    bobs = catalog_item(tenant_a, title="Bob's Draft", creators=[bob_profile], published=False)
    client = host_client("alpha.test", ann)
    listing = client.get(reverse("admin:catalog_contentitem_changelist")).content.decode()
    assert "Ann&#x27;s Draft" in listing and "Bob" not in listing
    assert client.get(change_url(anns)).status_code == 200
    assert client.get(change_url(bobs)).status_code == 404
    assert client.post(change_url(bobs), item_form(bobs, title="Hijacked")).status_code == 404
    assert workflow(client, bobs, "submit").status_code == 404
    with scope(tenant=tenant_a):
        bobs.refresh_from_db()
        assert bobs.title == "Bob's Draft" and bobs.status == ContentItem.Status.DRAFT

    response = client.post(change_url(anns), item_form(anns, title="Ann's Better Draft"))
    assert response.status_code == 302, response.content.decode()[:2000]
    with scope(tenant=tenant_a):
        anns.refresh_from_db()
        assert anns.title == "Ann's Better Draft"
        assert "better" in anns.search_text

    # Nor do Bob's drafts show up, or link, as a prerequisite Ann can pick; what is on sale does.
    on_sale = catalog_item(tenant_a, title="Published Basics")
    form = client.get(change_url(anns)).content.decode()
    assert "Published Basics" in form and "Bob&#x27;s Draft" not in form
    response = client.post(change_url(anns), item_form(anns, prerequisites=[bobs.pk]))
    assert response.status_code == 200 and "Select a valid choice." in response.content.decode()
    assert client.post(change_url(anns), item_form(anns, prerequisites=[on_sale.pk])).status_code == 302


def test_an_item_a_creator_adds_credits_them(tenant_a, creators):
    ann = creators[0]
    client = host_client("alpha.test", ann)
    data = item_form(ContentItem(kind="article", title="Fresh", slug="fresh", language="en", level="beginner",
                                 price=0))
    data.pop("lessons-TOTAL_FORMS"), data.pop("lessons-INITIAL_FORMS")
    data.pop("item_creators-TOTAL_FORMS"), data.pop("item_creators-INITIAL_FORMS")
    response = client.post(reverse("admin:catalog_contentitem_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    with scope(tenant=tenant_a):
        item = ContentItem.objects.get(slug="fresh")
        assert ItemCreator.objects.filter(item=item, creator__user=ann).exists()
        assert item.status == ContentItem.Status.DRAFT and item.created_by == ann


def test_a_creator_with_a_long_display_name_gets_a_profile_on_their_first_item(tenant_a):
    writer = member(tenant_a, Role.CREATOR, display_name="很长的名字" * 30)
    data = item_form(ContentItem(kind="article", title="Fresh", slug="fresh", language="en", level="beginner",
                                 price=0))
    for field in ("lessons-TOTAL_FORMS", "lessons-INITIAL_FORMS", "item_creators-TOTAL_FORMS",
                  "item_creators-INITIAL_FORMS"):
        data.pop(field)
    response = host_client("alpha.test", writer).post(reverse("admin:catalog_contentitem_add"), data)
    assert response.status_code == 302
    with scope(tenant=tenant_a):
        credit = ItemCreator.objects.select_related("creator").get(item__slug="fresh")
        assert credit.creator.user == writer and credit.creator.name == ("很长的名字" * 30)[:120]


def test_review_workflow_publishes_versions(tenant_a, creators):
    ann, _bob, ann_profile, _ = creators
    reviewer = member(tenant_a, Role.STAFF, mfa=True)
    item = catalog_item(tenant_a, title="Workflow", creators=[ann_profile], published=False)
    ann_client, reviewer_client = host_client("alpha.test", ann), host_client("alpha.test", reviewer)

    workflow(ann_client, item, "submit")
    workflow(ann_client, item, "approve")  # creators cannot approve
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        assert item.status == ContentItem.Status.IN_REVIEW and item.version == 0
    assert ann_client.get(change_url(item)).status_code == 200  # still visible to them, read-only

    workflow(reviewer_client, item, "reject")  # a reason is required
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        assert item.status == ContentItem.Status.IN_REVIEW
    workflow(reviewer_client, item, "reject", reason="Add a summary")
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        assert item.status == ContentItem.Status.DRAFT and item.review_note == "Add a summary"
    assert "Add a summary" in ann_client.get(change_url(item)).content.decode()

    workflow(ann_client, item, "submit")
    workflow(reviewer_client, item, "approve")
    refused = workflow(reviewer_client, item, "approve")  # sent again from a stale page: published already
    assert "Only an item in review can be approved." in reviewer_client.get(refused.url).content.decode()
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        assert item.status == ContentItem.Status.PUBLISHED and item.version == 1
    # The team's saved edits to the published item go live as its next version.
    assert reviewer_client.post(change_url(item), item_form(item, title="Workflow, revised")).status_code == 302
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        assert item.status == ContentItem.Status.PUBLISHED and item.version == 2
        versions = list(ItemVersion.objects.filter(item=item).order_by("number"))
        assert [v.number for v in versions] == [1, 2] and len(versions[0].content_hash) == 64
        assert versions[1].snapshot["title"] == "Workflow, revised"
        assert list(EditorialDecision.objects.filter(item=item).order_by("created_at", "id")
                    .values_list("outcome", flat=True)) == [
            "submitted", "rejected", "submitted", "approved", "updated"]
    # A published item is no longer the creator's to change.
    response = ann_client.post(change_url(item), item_form(item, title="Sneaky"))
    assert response.status_code == 403
    workflow(reviewer_client, item, "archive")
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        assert item.status == ContentItem.Status.ARCHIVED
    assert host_client("alpha.test").get(f"/item/{item.slug}/").status_code == 404


def test_an_archived_item_goes_back_on_sale_as_a_new_version_for_reviewers_only(tenant_a, creators,
                                                                                 django_capture_on_commit_callbacks):
    ann, _bob, ann_profile, _ = creators
    item = catalog_item(tenant_a, title="Seasonal", creators=[ann_profile], price=1999)
    reviewer = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    storefront = host_client("alpha.test")
    assert "Put back on sale" not in reviewer.get(change_url(item)).content.decode()
    workflow(reviewer, item, "restore")  # on sale already: refused, nothing changes
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        assert (item.status, item.version) == (ContentItem.Status.PUBLISHED, 1)

    workflow(reviewer, item, "archive")
    assert storefront.get(f"/item/{item.slug}/").status_code == 404
    with scope(tenant=tenant_a):  # edited while off sale
        ContentItem.objects.filter(pk=item.pk).update(title="Seasonal (winter edition)")
    page = reviewer.get(change_url(item)).content.decode()
    assert "Put back on sale" in page and "Learners who had access keep it." in page

    workflow(host_client("alpha.test", ann), item, "restore")  # creators cannot
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        assert item.status == ContentItem.Status.ARCHIVED

    with django_capture_on_commit_callbacks(execute=True):  # the storefront's cached pages are renewed at commit
        response = reviewer.post(reverse("admin:catalog_contentitem_workflow", args=[item.pk, "restore"]),
                                 follow=True)
    assert "Back on sale, as a new version." in response.content.decode()
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        assert (item.status, item.version) == (ContentItem.Status.PUBLISHED, 2)
        assert ItemVersion.objects.get(item=item, number=2).snapshot["title"] == "Seasonal (winter edition)"
        assert list(EditorialDecision.objects.filter(item=item).order_by("created_at", "id")
                    .values_list("outcome", flat=True))[-2:] == ["archived", "restored"]
    page = storefront.get(f"/item/{item.slug}/").content.decode()
    assert "Seasonal (winter edition)" in page

    again = reviewer.post(reverse("admin:catalog_contentitem_workflow", args=[item.pk, "restore"]), follow=True)
    assert "Only an archived item can be put back on sale." in again.content.decode()
    with scope(tenant=tenant_a):
        assert ContentItem.objects.get(pk=item.pk).version == 2


def test_the_review_history_is_written_in_the_storefronts_time_zone_and_names_published_changes(tenant_a):
    from zoneinfo import ZoneInfo

    from django.contrib.admin.utils import display_for_value
    from django.utils import translation

    tenant_a.time_zone = "Asia/Shanghai"
    tenant_a.save(update_fields=["time_zone"])
    item = catalog_item(tenant_a, title="Timed", price=1999)
    client = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    client.post(change_url(item), item_form(item, title="Timed (2nd ed.)"))
    with scope(tenant=tenant_a):
        decisions = list(EditorialDecision.objects.filter(item=item).order_by("created_at", "id"))
    assert [d.outcome for d in decisions] == ["submitted", "approved", "updated"]
    page = client.get(change_url(item)).content.decode()
    with translation.override("en"), timezone.override(ZoneInfo("Asia/Shanghai")):
        shown = display_for_value(decisions[-1].created_at, "-")
    assert f"{shown} · Changes published" in page


def test_the_teams_edit_to_a_published_item_goes_live_as_a_new_version(tenant_a, django_capture_on_commit_callbacks):
    """What the storefront sells (here a new price and title) is always what a published version records, and what
    the chain and the distribution channels were given; a save that changes nothing of it publishes nothing."""
    from payments.ledger import ledger_verify

    item = catalog_item(tenant_a, title="Mastering ML", price=1999)
    client = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    page = client.get(change_url(item)).content.decode()
    assert "Changes you save go live at once, as a new version." in page
    assert "Publish changes as a new version" not in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(change_url(item), item_form(item, title="Mastering ML (3rd ed.)", price="29.99"),
                               follow=True)
    assert "Your changes are live: published as version 2." in response.content.decode()
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        assert (item.version, item.price, item.title) == (2, 2999, "Mastering ML (3rd ed.)")
        assert [(v.snapshot["title"], v.snapshot["price"]) for v in item.versions.order_by("number")] == [
            ("Mastering ML", 1999), ("Mastering ML (3rd ed.)", 2999)]
    page = host_client("alpha.test").get(f"/item/{item.slug}/").content.decode()
    assert '<p class="price big">¥29.99</p>' in page

    response = client.post(change_url(item), item_form(item), follow=True)  # saved as it is
    assert response.status_code == 200 and "published as version" not in response.content.decode()
    with scope(tenant=tenant_a):
        assert item.versions.count() == 2
        assert ledger_verify(tenant=tenant_a).ok


def test_a_creator_previewing_their_draft_sees_their_latest_edit(tenant_a, creators,
                                                                 django_capture_on_commit_callbacks):
    ann, _bob, ann_profile, _ = creators
    draft = catalog_item(tenant_a, title="First Wording", creators=[ann_profile], published=False)
    client = host_client("alpha.test", ann)
    assert "<h1>First Wording</h1>" in client.get(f"/item/{draft.slug}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(change_url(draft), item_form(draft, title="Second Wording")).status_code == 302
    assert "<h1>Second Wording</h1>" in client.get(f"/item/{draft.slug}/").content.decode()


def test_a_new_draft_opens_at_an_address_that_had_no_item_a_moment_before(tenant_a):
    staff = member(tenant_a, Role.STAFF, mfa=True)
    client = host_client("alpha.test", staff)
    assert client.get("/item/coming-soon/").status_code == 404
    catalog_item(tenant_a, title="Coming Soon", slug="coming-soon", published=False)
    assert client.get("/item/coming-soon/").status_code == 200
    assert host_client("alpha.test").get("/item/coming-soon/").status_code == 404


@pytest.mark.parametrize("kind", ["category", "tag", "creator"])
def test_search_finds_an_item_by_the_new_name_of_its_category_tag_or_creator(tenant_a, kind,
                                                                            django_capture_on_commit_callbacks):
    with scope(tenant=tenant_a):
        named = {"category": lambda: Category.objects.create(tenant=tenant_a, name="Data", slug="data"),
                 "tag": lambda: Tag.objects.create(tenant=tenant_a, name="Data"),
                 "creator": lambda: Creator.objects.create(tenant=tenant_a, name="Data", slug="data")}[kind]()
    item = catalog_item(tenant_a, title="Pandas in Practice", creators=[named] if kind == "creator" else ())
    if kind != "creator":
        with scope(tenant=tenant_a):
            getattr(item, "categories" if kind == "category" else "tags").add(named)
            services.item_refresh_derived(item=item)

    def found(query):
        page = host_client("alpha.test").get("/browse/", {"q": query}).content.decode()
        return "Pandas in Practice" in page.split('class="results"')[1]

    assert found("data") and not found("数据科学")
    form = {"category": {"name": "数据科学", "slug": "data", "position": 0}, "tag": {"name": "数据科学"},
            "creator": {"name": "数据科学", "slug": "data", "headline": "", "bio": "", "user": ""}}[kind]
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.post(reverse(f"admin:catalog_{kind}_change", args=[named.pk]), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert found("数据科学") and not found("data")


@pytest.mark.parametrize(("kind", "form"), [("category", {"slug": "a-b", "position": 0}), ("tag", {})])
def test_a_category_or_tag_name_cannot_hold_the_separator_of_the_export(tenant_a, kind, form):
    client = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    response = client.post(reverse(f"admin:catalog_{kind}_add"), {"name": "Python | Data", **form})
    assert response.status_code == 200
    assert "A name cannot contain “|”: the CSV export separates names with it." in response.content.decode()
    assert client.post(reverse(f"admin:catalog_{kind}_add"), {"name": "Python, Data", **form}).status_code == 302
    with scope(tenant=tenant_a):
        model = Category if kind == "category" else Tag
        assert list(model.objects.values_list("name", flat=True)) == ["Python, Data"]


def test_another_tenants_item_is_404_in_the_admin(tenant_a, tenant_b):
    theirs = catalog_item(tenant_b, title="Beta Item")
    staff = member(tenant_a, Role.STAFF, mfa=True)
    client = host_client("alpha.test", staff)
    assert client.get(change_url(theirs)).status_code == 404
    assert workflow(client, theirs, "archive").status_code == 404
    assert "Beta Item" not in client.get(reverse("admin:catalog_contentitem_changelist")).content.decode()


def test_creators_shares_over_the_whole_are_refused_next_to_the_shares(tenant_a, creators):
    _ann, _bob, ann_profile, bob_profile = creators
    item = catalog_item(tenant_a, title="Shared Draft", published=False)
    client = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))

    def shares(first, second):
        data = item_form(item, **{"item_creators-TOTAL_FORMS": 2})
        for n, (profile, bp) in enumerate([(ann_profile, first), (bob_profile, second)]):
            data.update({f"item_creators-{n}-creator": profile.pk, f"item_creators-{n}-share_bp": bp,
                         f"item_creators-{n}-position": n, f"item_creators-{n}-item": item.pk})
        return client.post(change_url(item), data)

    response = shares(6000, 6000)
    assert response.status_code == 200
    assert "The creators&#x27; shares add up to 120%" in response.content.decode()
    with scope(tenant=tenant_a):
        assert not ItemCreator.objects.filter(item=item).exists()
    assert shares(6000, 4000).status_code == 302
    with scope(tenant=tenant_a):
        assert sorted(ItemCreator.objects.filter(item=item).values_list("share_bp", flat=True)) == [4000, 6000]


def test_a_creator_profile_links_only_someone_on_this_storefronts_team(tenant_a, tenant_b):
    """Accounts are platform-wide: the creator form neither lists nor accepts another storefront's people, nor a
    learner who is not on the team."""
    from catalog.models import Creator

    staff = member(tenant_a, Role.STAFF, mfa=True)
    writer = member(tenant_a, Role.CREATOR, email="writer@alpha.example")
    learner = member(tenant_a, email="learner@alpha.example")
    outsider = member(tenant_b, email="secret.learner@beta-only.example")
    client = host_client("alpha.test", staff)
    add = reverse("admin:catalog_creator_add")
    page = client.get(f"{add}?user={outsider.pk}").content.decode()
    assert "writer@alpha.example" in page
    assert "secret.learner@beta-only.example" not in page and "learner@alpha.example" not in page
    for person in (outsider, learner):
        refused = client.post(add, {"name": "Hijack", "slug": "hijack", "headline": "", "bio": "", "user": person.pk})
        assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    client.post(add, {"name": "Writer", "slug": "writer", "headline": "", "bio": "", "user": writer.pk})
    with scope(tenant=tenant_a):
        assert list(Creator.objects.values_list("user", flat=True)) == [writer.pk]


def test_creators_read_their_colleagues_profiles_without_the_accounts_behind_them(tenant_a, creators):
    ann, bob, _ann_profile, bob_profile = creators
    client = host_client("alpha.test", ann)
    listing = client.get(reverse("admin:catalog_creator_changelist"))
    profile = client.get(reverse("admin:catalog_creator_change", args=[bob_profile.pk]))
    assert listing.status_code == profile.status_code == 200
    assert "Bob" in listing.content.decode() and "Bob" in profile.content.decode()
    for page in (listing, profile):
        assert bob.email not in page.content.decode()
    staff = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    assert bob.email in staff.get(reverse("admin:catalog_creator_changelist")).content.decode()


def test_visitors_see_a_rebranded_storefront_at_once(tenant_a, django_capture_on_commit_callbacks):
    visitor = host_client("alpha.test")
    assert "Alpha Academy" in visitor.get("/").content.decode()

    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.post(f"/admin/marketplace/tenant/{tenant_a.pk}/change/", {
            "name": "Gamma College", "primary_color": "#123456", "default_language": "en"})
    assert response.status_code == 302, response.content.decode()[:2000]
    tenant_a.refresh_from_db()
    assert tenant_a.name == "Gamma College"

    assert "Gamma College" in owner.get("/").content.decode()  # signed in: fresh
    page = host_client("alpha.test").get("/").content.decode()  # a new visitor, no session
    assert "Gamma College" in page and "#123456" in page, "visitors still get the old name and colour"


def test_a_learning_path_taken_down_in_the_admin_is_gone_for_visitors_at_once(
        tenant_a, django_capture_on_commit_callbacks):
    item = catalog_item(tenant_a, title="Step One")
    with scope(tenant=tenant_a):
        path = LearningPath.objects.create(tenant=tenant_a, title="Data Path", slug="data-path", is_published=True)
        step = PathStep.objects.create(tenant=tenant_a, path=path, item=item, position=0)
    assert host_client("alpha.test").get("/paths/data-path/").status_code == 200

    staff = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/admin/catalog/learningpath/{path.pk}/change/", {
            "title": "Data Path", "slug": "data-path", "description": "",
            "steps-TOTAL_FORMS": "1", "steps-INITIAL_FORMS": "1", "steps-MIN_NUM_FORMS": "0",
            "steps-MAX_NUM_FORMS": "1000",
            "steps-0-id": str(step.pk), "steps-0-path": str(path.pk),
            "steps-0-item": str(item.pk), "steps-0-position": "0", "steps-0-note": "",
        })  # is_published left unticked
    assert response.status_code == 302, response.content.decode()[:3000]
    with scope(tenant=tenant_a):
        path.refresh_from_db()
    assert not path.is_published
    assert staff.get("/paths/data-path/").status_code == 404  # signed in: gone
    assert host_client("alpha.test").get("/paths/data-path/").status_code == 404, \
        "a visitor without a session still gets the unpublished path"


def test_visitors_see_a_renamed_creator_at_once(tenant_a, django_capture_on_commit_callbacks):
    creator = catalog_creator(tenant_a, "Ada Typo")
    catalog_item(tenant_a, title="Counting Machines", creators=[creator])
    assert "Ada Typo" in host_client("alpha.test").get("/").content.decode()

    staff = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    page = staff.get(f"/admin/catalog/creator/{creator.pk}/change/").content.decode()
    assert "Ada Typo" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/admin/catalog/creator/{creator.pk}/change/", {
            "name": "Ada Lovelace", "slug": creator.slug, "headline": "", "bio": ""})
    assert response.status_code == 302, response.content.decode()[:3000]
    page = host_client("alpha.test").get("/").content.decode()
    assert "Ada Lovelace" in page and "Ada Typo" not in page, "visitors still see the old creator name"


def test_a_creator_reading_their_item_in_review_sees_its_price_as_money(tenant_a, creators):
    ann, _bob, ann_profile, _ = creators
    item = catalog_item(tenant_a, title="Priced", creators=[ann_profile], published=False, price=4900)
    ann_client = host_client("alpha.test", ann)
    workflow(ann_client, item, "submit")
    page = ann_client.get(change_url(item)).content.decode()
    assert "¥49.00" in page and ">4900<" not in page and "minor unit" not in page
