"""The learner's storefront: listings, search, item pages, the paywall, progress and reviews."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope, scopes_disabled

from accounts.models import Role
from catalog.models import ContentItem, ItemProgress, LessonProgress, Review
from tests.conftest import clear_cache, host_client
from tests.factories import catalog_creator, catalog_item, grant, member

pytestmark = pytest.mark.django_db


def test_home_shows_published_items_and_hides_drafts(tenant_a):
    catalog_item(tenant_a, title="Python for Analysts", is_featured=True)
    catalog_item(tenant_a, title="Secret Draft", published=False)
    page = host_client("alpha.test").get("/").content.decode()
    assert "Python for Analysts" in page
    assert "Secret Draft" not in page


def test_another_storefronts_item_is_404(tenant_a, tenant_b):
    item = catalog_item(tenant_a, title="Alpha Only", lessons=2, preview_lessons=1)
    client = host_client("beta.test")
    with scope(tenant=tenant_a):
        lesson = item.lessons.first()
    for url in (f"/item/{item.slug}/", f"/item/{item.slug}/learn/", f"/item/{item.slug}/media/",
                f"/item/{item.slug}/lesson/{lesson.id}/", f"/item/{item.slug}/lesson/{lesson.id}/media/"):
        assert client.get(url).status_code == 404, url
    assert host_client("alpha.test").get(f"/item/{item.slug}/").status_code == 200


def test_search_finds_english_and_chinese_titles(tenant_a):
    catalog_item(tenant_a, title="Python for Data Analysis")
    catalog_item(tenant_a, title="数据科学入门", subtitle="从零开始")
    catalog_item(tenant_a, title="Watercolour Basics")
    client = host_client("alpha.test")

    def titles(q):
        body = client.get("/browse/", {"q": q}).content.decode()
        return {t for t in ("Python for Data Analysis", "数据科学入门", "Watercolour Basics") if t in body}

    assert titles("python") == {"Python for Data Analysis"}
    assert titles("pyth") == {"Python for Data Analysis"}  # words match by prefix
    assert titles("数据") == {"数据科学入门"}
    assert titles("科学") == {"数据科学入门"}
    assert titles("科") == {"数据科学入门"}
    assert titles("开始") == {"数据科学入门"}
    assert titles("data") == {"Python for Data Analysis"}
    assert titles("nothing-like-this") == set()


@pytest.mark.parametrize(("title", "query"), [
    ("Python3 与 AI绘画", "Ｐｙｔｈｏｎ"), ("Python3 与 AI绘画", "ｐｙｔｈｏｎ３"), ("Python3 与 AI绘画", "ＡＩ绘画"),
    ("Ｐｙｔｈｏｎ３ 与 ＡＩ绘画", "python3"), ("Ｐｙｔｈｏｎ３ 与 ＡＩ绘画", "ai绘画"),
])
def test_full_width_and_half_width_letters_and_digits_find_each_other(tenant_a, title, query):
    """Chinese input methods in full-width mode type Latin letters and digits as full-width forms."""
    catalog_item(tenant_a, title=title)
    body = host_client("alpha.test").get("/browse/", {"q": query}).content.decode()
    assert title in body.split('class="results"')[1]


def test_best_match_puts_the_title_that_names_the_words_above_a_more_popular_passing_mention(tenant_a):
    """On both databases: the search text holds the title twice, so a title match outweighs a mention in the
    description, whatever the items' popularity; a sort the learner picks still wins over it."""
    mention = catalog_item(tenant_a, title="Spreadsheets at Work",
                           description="Ends with a look at Python and 数据 cleaning.")
    named = catalog_item(tenant_a, title="Python 数据 Cleaning")
    with scopes_disabled():
        ContentItem.objects.filter(pk=mention.pk).update(learner_count=500)
    client = host_client("alpha.test")

    def order(**params):
        body = client.get("/browse/", params).content.decode().split('class="results"')[1]
        return sorted((named.title, mention.title), key=body.index)

    for q in ("python", "pyth", "数据", "python 数据"):
        assert order(q=q) == [named.title, mention.title], q
    assert order(q="python", sort="popular") == [mention.title, named.title]


def test_a_search_without_results_says_so(tenant_a):
    catalog_item(tenant_a, title="Watercolour Basics")
    body = host_client("alpha.test").get("/browse/", {"q": "量子力学"}).content.decode()
    assert "0 results" in body
    assert "Nothing matches. Try fewer words or other filters." in body


def test_browse_filters_and_sorts(tenant_a):
    catalog_item(tenant_a, title="Free Article", kind="article", price=0)
    catalog_item(tenant_a, title="Cheap Course", kind="course", price=990, lessons=1, level="advanced")
    catalog_item(tenant_a, title="Dear Course", kind="course", price=19900, lessons=1, language="zh-hans")
    client = host_client("alpha.test")

    def shown(**params):
        body = client.get("/browse/", params).content.decode()
        return [t for t in ("Free Article", "Cheap Course", "Dear Course") if t in body]

    assert shown(kind="course") == ["Cheap Course", "Dear Course"]
    assert shown(free="on") == ["Free Article"]
    assert shown(price_min="5", price_max="10") == ["Cheap Course"]  # typed in major units
    assert shown(level="advanced") == ["Cheap Course"]
    assert shown(language="zh-hans") == ["Dear Course"]
    body = client.get("/browse/", {"sort": "price_high"}).content.decode()
    assert body.index("Dear Course") < body.index("Cheap Course") < body.index("Free Article")


def test_highest_rated_lists_items_without_ratings_last(tenant_a):
    catalog_item(tenant_a, title="Brand New Course")  # no ratings yet, as every new item
    catalog_item(tenant_a, title="Rated Course", rating_count=2, rating_sum=9)
    response = host_client("alpha.test", member(tenant_a)).get("/browse/", {"sort": "rating"})
    assert response.status_code == 200
    body = response.content.decode()
    assert body.index("Rated Course") < body.index("Brand New Course")


def test_bad_filter_is_shown_next_to_the_field(tenant_a):
    response = host_client("alpha.test").get("/browse/", {"price_min": "50", "price_max": "10"})
    assert response.status_code == 200
    assert "The highest price must not be below the lowest." in response.content.decode()
    for name in ("price_min", "price_max"):  # a number too large to be a price, which once overflowed
        response = host_client("alpha.test").get("/browse/", {name: "9E+999999"})
        assert response.status_code == 200
        assert "Ensure that there are no more than 12 digits in total." in response.content.decode()


@pytest.mark.parametrize("currency,typed,accepted", [("JPY", "990.5", False), ("KWD", "9.125", True)])
def test_price_filters_take_as_many_decimals_as_the_currency_has(tenant_a, currency, typed, accepted):
    """A yen price has no decimals: 990.5 is refused next to the field, not cut to 990. A dinar has three."""
    from marketplace.models import Tenant

    Tenant.objects.filter(pk=tenant_a.pk).update(currency=currency, default_language="en")
    catalog_item(tenant_a, title="Priced Course", price=9125 if currency == "KWD" else 990)
    body = host_client("alpha.test").get("/browse/", {"price_max": typed}).content.decode()
    if accepted:
        assert "decimal places" not in body and "Priced Course" in body
    else:
        assert "Ensure that there are no more than 0 decimal places." in body and "Priced Course" not in body


def test_listing_query_count_does_not_depend_on_item_count(tenant_a):
    creator = catalog_creator(tenant_a, "Ada")
    client = host_client("alpha.test", member(tenant_a))
    paths = ["/", "/browse/", "/browse/?sort=popular&q=course", "/browse/?page=2", f"/creators/{creator.slug}/"]

    def queries_with(total):
        with scope(tenant=tenant_a):
            have = ContentItem.objects.count()
        for i in range(have, total):
            catalog_item(tenant_a, title=f"Course {i}", creators=[creator], is_featured=True)
        counts = {}
        for path in paths:
            clear_cache()  # measure the uncached page; the cached one makes fewer queries still
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(path).status_code == 200
            counts[path] = len(ctx.captured_queries)
        return counts

    assert queries_with(30) == queries_with(200)


def test_cached_listing_is_refreshed_when_an_item_is_published(tenant_a, django_capture_on_commit_callbacks):
    client = host_client("alpha.test")
    catalog_item(tenant_a, title="First Light")
    assert "First Light" in client.get("/browse/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        catalog_item(tenant_a, title="Second Wind")
    assert "Second Wind" in client.get("/browse/").content.decode()


def test_paywall_without_access_and_preview_for_everyone(tenant_a):
    item = catalog_item(tenant_a, title="Paid Course", kind="course", price=4900, lessons=3, preview_lessons=1)
    with scope(tenant=tenant_a):
        preview, locked = list(item.lessons.order_by("position"))[:2]
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    page = client.get(f"/item/{item.slug}/").content.decode()
    assert "This item is for learners who have bought it" in page
    assert client.get(f"/item/{item.slug}/lesson/{preview.id}/").status_code == 200
    assert client.get(f"/item/{item.slug}/lesson/{locked.id}/").status_code == 302
    assert "Lesson 2" not in client.get(f"/item/{item.slug}/lesson/{locked.id}/", follow=True).content.decode().split(
        "<article")[1].split("</h1>")[0]

    grant(tenant_a, learner, item=item)
    assert client.get(f"/item/{item.slug}/lesson/{locked.id}/").status_code == 200


def test_the_team_opens_paid_and_draft_items_only_with_a_second_factor(tenant_a):
    from tests.factories import enable_totp

    item = catalog_item(tenant_a, title="Paid Course", kind="course", price=4900, lessons=2)
    draft = catalog_item(tenant_a, title="Draft Course", kind="course", price=4900, lessons=1, published=False)
    with scope(tenant=tenant_a):
        lesson = item.lessons.order_by("position").first()
    staff = member(tenant_a, Role.STAFF)
    client = host_client("alpha.test", staff)
    # A password alone, as a stolen one would be, opens what any visitor sees.
    assert client.get(f"/item/{item.slug}/lesson/{lesson.id}/").status_code == 302
    assert client.get(f"/item/{draft.slug}/").status_code == 404
    enable_totp(staff)
    assert client.get(f"/item/{item.slug}/lesson/{lesson.id}/").status_code == 200
    assert client.get(f"/item/{draft.slug}/").status_code == 200


def test_media_only_after_the_access_check_with_range_support(tenant_a):
    from django.core.files.base import ContentFile

    item = catalog_item(tenant_a, title="Audio Lecture", kind="audio", price=990)
    with scope(tenant=tenant_a):
        item.media.save("lecture.wav", ContentFile(b"RIFF" + bytes(range(256)) * 40))
    url = f"/item/{item.slug}/media/"
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    assert client.get(url).status_code == 404
    assert host_client("alpha.test").get(url).status_code == 404

    grant(tenant_a, learner, item=item)
    whole = client.get(url)
    assert whole.status_code == 200
    body = b"".join(whole.streaming_content)
    assert len(body) == 4 + 256 * 40 and whole["Accept-Ranges"] == "bytes"
    part = client.get(url, HTTP_RANGE="bytes=4-13")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 4-13/{len(body)}"
    assert b"".join(part.streaming_content) == body[4:14]
    tail = client.get(url, HTTP_RANGE="bytes=-5")
    assert b"".join(tail.streaming_content) == body[-5:]
    assert client.get(url, HTTP_RANGE=f"bytes={len(body) + 10}-").status_code == 416


@pytest.mark.parametrize(("header", "status", "content_range"), [
    ("bytes=" + "9" * 5000 + "-", 416, "bytes */100"),  # starts past the end
    ("bytes=0-" + "9" * 5000, 206, "bytes 0-99/100"),  # ends past the end: up to the end
    ("bytes=-" + "9" * 5000, 206, "bytes 0-99/100"),  # more than the whole file from the end: all of it
    ("bytes=" + "0" * 5000 + "1-", 206, "bytes 1-99/100"),
])
def test_a_range_with_an_absurdly_long_number_reads_as_past_the_end(tenant_a, header, status, content_range):
    from django.core.files.base import ContentFile

    item = catalog_item(tenant_a, title="Lecture", kind="audio", price=0)
    with scope(tenant=tenant_a):
        item.media.save("lecture.mp3", ContentFile(b"x" * 100))
    response = host_client("alpha.test", member(tenant_a)).get(f"/item/{item.slug}/media/", HTTP_RANGE=header)
    assert (response.status_code, response["Content-Range"]) == (status, content_range)


@pytest.mark.parametrize("name, body", [("notes.html", b"<script>fetch('/admin/')</script>"),
                                        ("diagram.svg", b"<svg xmlns='http://www.w3.org/2000/svg' onload='x()'/>"),
                                        ("handout", b"<html><script>x()</script>")])
def test_uploaded_media_that_a_browser_would_run_is_only_ever_a_download(tenant_a, name, body):
    """The storefront's host is also the team's admin: a page or an SVG a creator uploaded as "media" must not run
    there with a reviewer's or learner's session. Players and PDFs stay inline."""
    from django.core.files.base import ContentFile

    item = catalog_item(tenant_a, title="Notes", kind="article", price=0)
    lecture = catalog_item(tenant_a, title="Lecture", kind="video", price=0)
    with scope(tenant=tenant_a):
        item.media.save(name, ContentFile(body))
        lecture.media.save("lecture.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42" + bytes(100)))
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    for headers in ({}, {"HTTP_RANGE": "bytes=0-9"}):
        served = client.get(f"/item/{item.slug}/media/", **headers)
        assert served["Content-Type"] == "application/octet-stream"
        assert served["Content-Disposition"].startswith("attachment;")
        assert served["X-Content-Type-Options"] == "nosniff"
    played = client.get(f"/item/{lecture.slug}/media/")
    assert played["Content-Type"] == "video/mp4"
    assert not played.get("Content-Disposition", "").startswith("attachment")


def test_progress_is_recorded_and_the_course_completes(tenant_a):
    item = catalog_item(tenant_a, title="Two Lessons", kind="course", lessons=2)
    with scope(tenant=tenant_a):
        first, second = list(item.lessons.order_by("position"))
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    response = client.post(f"/item/{item.slug}/progress/", {"lesson": first.id, "position": 42},
                           HTTP_ACCEPT="application/json")
    assert response.json() == {"percent": 0, "completed": False}
    # Resuming goes back to that lesson, at that position.
    resume = client.get(f"/item/{item.slug}/learn/")
    assert resume.status_code == 302 and resume.url.endswith(f"/lesson/{first.id}/")
    assert 'data-position="42"' not in client.get(resume.url).content.decode()  # text lessons have no player
    client.post(f"/item/{item.slug}/progress/", {"lesson": first.id, "completed": "1"})
    client.post(f"/item/{item.slug}/progress/", {"lesson": second.id, "completed": "1"})
    with scope(tenant=tenant_a):
        progress = ItemProgress.objects.get(user=learner, item=item)
        assert progress.percent == 100 and progress.completed_at is not None
        assert progress.last_lesson == second
    page = client.get("/learn/").content.decode()
    assert "Two Lessons" in page and "Completed" in page


def test_progress_needs_access(tenant_a):
    item = catalog_item(tenant_a, title="Paid", kind="article", price=100)
    response = host_client("alpha.test", member(tenant_a)).post(f"/item/{item.slug}/progress/", {"completed": "1"})
    assert response.status_code == 403
    with scope(tenant=tenant_a):
        assert not ItemProgress.objects.exists()


@pytest.mark.parametrize(("data", "code"), [
    ({"lesson": "abc"}, "invalid_lesson"),
    ({"position": "inf"}, "invalid_position"),
    ({"position": "nan"}, "invalid_position"),
    ({"position": "ten"}, "invalid_position"),
])
def test_the_player_gets_a_clear_error_for_bad_progress_input(tenant_a, data, code):
    item = catalog_item(tenant_a, title="Free course", kind="course", lessons=2)
    client = host_client("alpha.test", member(tenant_a))
    response = client.post(f"/item/{item.slug}/progress/", data, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and error["extra"]["field"] in data and error["message"]
    # The "mark complete" button (no JSON) gets the storefront's error page, not a 500.
    assert client.post(f"/item/{item.slug}/progress/", data).status_code == 400
    with scope(tenant=tenant_a):
        assert not ItemProgress.objects.exists()


def test_a_position_past_the_end_is_kept_within_the_lesson(tenant_a):
    item = catalog_item(tenant_a, title="Free course", kind="course", lessons=2)
    learner = member(tenant_a)
    with scope(tenant=tenant_a):
        first, second = list(item.lessons.order_by("position"))
        first.duration_seconds = 600
        first.save(update_fields=["duration_seconds"])
    client = host_client("alpha.test", learner)
    for lesson, position in ((first, "1e20"), (second, "-5")):
        response = client.post(f"/item/{item.slug}/progress/", {"lesson": lesson.id, "position": position},
                               HTTP_ACCEPT="application/json")
        assert response.status_code == 200
    with scope(tenant=tenant_a):
        positions = dict(LessonProgress.objects.filter(user=learner).values_list("lesson_id", "position_seconds"))
    # The first lesson's length is known; the second's is not, so its position only has to fit the column.
    assert positions == {first.id: 600, second.id: 0}
    client.post(f"/item/{item.slug}/progress/", {"lesson": second.id, "position": "1e20"},
                HTTP_ACCEPT="application/json")
    with scope(tenant=tenant_a):
        assert LessonProgress.objects.get(user=learner, lesson=second).position_seconds == 2**31 - 1


def test_the_players_position_reports_complete_a_lesson_only_when_it_says_so(tenant_a):
    """The player reports ``completed=0`` while playing and ``1`` at the end; the button sends ``1``."""
    item = catalog_item(tenant_a, title="Free course", kind="course", lessons=2)
    learner = member(tenant_a)
    with scope(tenant=tenant_a):
        first, second = list(item.lessons.order_by("position"))
    client = host_client("alpha.test", learner)
    for completed in ("0", "false", ""):
        response = client.post(f"/item/{item.slug}/progress/", {"lesson": first.id, "position": "3",
                                                                "completed": completed}, HTTP_ACCEPT="application/json")
        assert response.json() == {"percent": 0, "completed": False}, completed
    response = client.post(f"/item/{item.slug}/progress/", {"lesson": second.id, "completed": "1"},
                           HTTP_ACCEPT="application/json")
    assert response.json() == {"percent": 50, "completed": False}


def test_reviews_one_per_learner_only_with_access(tenant_a):
    item = catalog_item(tenant_a, title="Reviewed", kind="article", price=500)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    assert client.post(f"/item/{item.slug}/review/", {"rating": 5, "body": "Great"}).status_code == 400
    grant(tenant_a, learner, item=item)
    assert client.post(f"/item/{item.slug}/review/", {"rating": 5, "body": "Great"}).status_code == 302
    assert client.post(f"/item/{item.slug}/review/", {"rating": 3, "body": "On second thought"}).status_code == 302
    with scope(tenant=tenant_a):
        assert Review.objects.filter(item=item).count() == 1
        item.refresh_from_db()
        assert (item.rating_count, item.rating_sum, item.rating) == (1, 3, 3.0)
    assert "On second thought" in client.get(f"/item/{item.slug}/").content.decode()


def test_preview_only_learner_cannot_review(tenant_a):
    item = catalog_item(tenant_a, title="Course", kind="course", price=500, lessons=2, preview_lessons=1)
    response = host_client("alpha.test", member(tenant_a)).post(f"/item/{item.slug}/review/", {"rating": 4})
    assert response.status_code == 400
    with scopes_disabled():
        assert not Review.objects.exists()


def test_chinese_interface_shows_content_in_its_own_language(tenant_a):
    catalog_item(tenant_a, title="Python for Data Analysis", language="en")
    client = host_client("alpha.test")
    client.cookies["django_language"] = "zh-hans"
    body = client.get("/browse/").content.decode()
    assert "浏览全部内容" in body and "免费" in body
    assert '<h3 lang="en"><a href="/item/' in body  # the item keeps its own language for screen readers


def test_visitors_who_are_not_signed_in_get_whole_pages_from_the_cache(tenant_a, django_capture_on_commit_callbacks):
    item = catalog_item(tenant_a, title="Cached Course")
    anonymous = host_client("alpha.test")
    first = anonymous.get(f"/item/{item.slug}/").content
    with CaptureQueriesContext(connection) as ctx:
        again = anonymous.get(f"/item/{item.slug}/")
    assert again.content == first
    # Only the host lookup and the scope's transaction remain.
    assert not [q for q in ctx.captured_queries if "catalog_" in q["sql"]]

    # A signed-in learner never gets the anonymous copy, and each language has its own.
    learner = member(tenant_a, email="reader@example.com")
    assert "reader@example.com" in host_client("alpha.test", learner).get(f"/item/{item.slug}/").content.decode()
    anonymous.cookies["django_language"] = "zh-hans"
    assert "简介" in anonymous.get(f"/item/{item.slug}/").content.decode()

    # Publishing a change invalidates the cached pages.
    with django_capture_on_commit_callbacks(execute=True):
        catalog_item(tenant_a, title="Brand New")
    anonymous.cookies.pop("django_language")
    assert "Brand New" in anonymous.get("/browse/").content.decode()


def test_language_switch_keeps_the_visitor_on_the_page(tenant_a):
    client = host_client("alpha.test")
    response = client.post("/language/", {"language": "zh-hans", "next": "/browse/?q=x"})
    assert response.status_code == 302 and response.url == "/browse/?q=x"
    assert response.cookies["django_language"].value == "zh-hans"
    assert client.post("/language/", {"language": "xx", "next": "https://evil.example/"}).url == "/"


def test_an_archived_free_item_stays_open_to_those_who_were_learning_it(tenant_a):
    from catalog import services

    item = catalog_item(tenant_a, title="Free Course", kind="course", lessons=2)
    with scope(tenant=tenant_a):
        first = item.lessons.order_by("position").first()
    learning, newcomer = host_client("alpha.test", member(tenant_a)), host_client("alpha.test", member(tenant_a))
    assert learning.post(f"/item/{item.slug}/progress/", {"lesson": first.id, "completed": "1"}).status_code == 302
    with scope(tenant=tenant_a):
        services.item_archive(item=item, actor=None)

    assert "Free Course" in learning.get("/learn/").content.decode()
    assert learning.get(f"/item/{item.slug}/").status_code == 200
    assert learning.get(f"/item/{item.slug}/lesson/{first.id}/").status_code == 200
    assert newcomer.get(f"/item/{item.slug}/").status_code == 404
    assert host_client("alpha.test").get(f"/item/{item.slug}/lesson/{first.id}/").status_code == 404


def test_my_learning_lists_only_the_items_the_learner_can_open(tenant_a):
    """A bundle or a subscription tier can name an item still in review, or one archived since: My learning must
    not list (with a "Start" button to a 404) what the learner cannot open, nor name an item not public yet."""
    from catalog import services
    from catalog.models import Bundle, Category
    from payments.models import SubscriptionPlan

    on_sale = catalog_item(tenant_a, title="Part One", price=990)
    upcoming = catalog_item(tenant_a, title="Unannounced Part Two", price=990, published=False)
    retired = catalog_item(tenant_a, title="First Edition", price=990)
    with scope(tenant=tenant_a):
        services.item_submit(item=upcoming, actor=None)
        bundle = Bundle.objects.create(tenant=tenant_a, title="All Parts", slug="all", price=1500, is_published=True)
        bundle.items.add(on_sale, upcoming, retired)
        category = Category.objects.create(tenant=tenant_a, name="Series", slug="series")
        for item in (on_sale, upcoming, retired):
            item.categories.add(category)
        plan = SubscriptionPlan.objects.create(tenant=tenant_a, name="Series", slug="series", price=990)
        plan.categories.add(category)
    buyer, subscriber = member(tenant_a), member(tenant_a)
    grant(tenant_a, buyer, bundle=bundle)
    grant(tenant_a, subscriber, plan=plan, source="subscription")
    with scope(tenant=tenant_a):
        services.item_archive(item=retired, actor=None)

    for learner, opens_retired in ((buyer, True), (subscriber, False)):
        client = host_client("alpha.test", learner)
        page = client.get("/learn/").content.decode()
        assert "Part One" in page and "Unannounced Part Two" not in page
        assert client.get(f"/item/{upcoming.slug}/").status_code == 404
        # What was bought stays open after it is archived; a subscription covers only what is on sale.
        assert ("First Edition" in page) is opens_retired
        assert client.get(f"/item/{retired.slug}/").status_code == (200 if opens_retired else 404)


def test_a_learning_path_names_only_prerequisites_on_sale(tenant_a):
    from catalog.models import LearningPath, PathStep

    basics = catalog_item(tenant_a, title="Published Basics")
    secret = catalog_item(tenant_a, title="Secret Upcoming Masterclass", published=False)
    course = catalog_item(tenant_a, title="Public Course")
    with scope(tenant=tenant_a):
        course.prerequisites.add(basics, secret)
        path = LearningPath.objects.create(tenant=tenant_a, title="Path", slug="path", is_published=True)
        PathStep.objects.create(tenant=tenant_a, path=path, item=course, position=0)
    page = host_client("alpha.test").get("/paths/path/").content.decode()
    assert "Public Course" in page and "Comes after: Published Basics" in page
    assert "Secret Upcoming Masterclass" not in page


def test_watching_a_free_preview_is_not_learning_until_the_item_is_bought(tenant_a):
    item = catalog_item(tenant_a, title="Paid Course", kind="course", price=4900, lessons=3, preview_lessons=1)
    with scope(tenant=tenant_a):
        preview = item.lessons.order_by("position").first()
    watchers = [member(tenant_a) for _ in range(3)]
    for watcher in watchers:
        host_client("alpha.test", watcher).post(f"/item/{item.slug}/progress/", {"lesson": preview.id, "position": 5},
                                                HTTP_ACCEPT="application/json")
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        assert item.learner_count == 0
    # One buys it: from their next step on they are one of its learners, counted once.
    grant(tenant_a, watchers[0], item=item)
    for position in (6, 7):
        host_client("alpha.test", watchers[0]).post(f"/item/{item.slug}/progress/",
                                                    {"lesson": preview.id, "position": position},
                                                    HTTP_ACCEPT="application/json")
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        assert item.learner_count == 1


def test_the_headers_sign_in_link_comes_back_to_the_page_it_was_pressed_on(tenant_a):
    item = catalog_item(tenant_a, title="Signed Course", price=1900)
    visitor = host_client("alpha.test")
    page = visitor.get(f"/item/{item.slug}/?ref=abc").content.decode()
    assert f'href="/accounts/login/?next=/item/{item.slug}/%3Fref%3Dabc"' in page
    signed_in = visitor.post(f"/accounts/login/?next=/item/{item.slug}/%3Fref%3Dabc", {
        "login": member(tenant_a, email="back@example.com").email, "password": "correct horse battery staple"})
    assert signed_in.status_code == 302 and signed_in.url == f"/item/{item.slug}/?ref=abc"
    # From home and from the account pages themselves, signing in just lands on home.
    anonymous = host_client("alpha.test")
    assert 'href="/accounts/login/"' in anonymous.get("/").content.decode()
    assert 'href="/accounts/login/"' in anonymous.get("/accounts/signup/").content.decode()


def test_a_visitor_can_press_buy_and_after_signing_in_or_up_lands_on_the_checkout(tenant_a):
    from catalog.models import Bundle
    from payments.models import SubscriptionPlan

    item = catalog_item(tenant_a, title="Paid Course", price=1900)
    with scope(tenant=tenant_a):
        bundle = Bundle.objects.create(tenant=tenant_a, title="Starter pack", slug="starter", price=2900,
                                       is_published=True)
        bundle.items.add(item)
        SubscriptionPlan.objects.create(tenant=tenant_a, name="All access", slug="all", price=1900)
    visitor = host_client("alpha.test")
    page = visitor.get(f"/item/{item.slug}/").content.decode()
    buy = f"/accounts/login/?next=%2Fcheckout%2F%3Fitem%3D{item.slug}"
    assert f'<a class="button" href="{buy}">Buy now</a>' in page
    assert f'href="/accounts/login/?next=/item/{item.slug}/">Sign in to open it.</a>' in page
    assert 'href="/accounts/login/?next=%2Fcheckout%2F%3Fbundle%3Dstarter">Buy the bundle' in visitor.get(
        "/bundles/starter/").content.decode()
    assert 'href="/accounts/login/?next=%2Fcheckout%2F%3Fplan%3Dall">Subscribe' in visitor.get(
        "/plans/").content.decode()

    signed_in = visitor.post(buy, {"login": member(tenant_a, email="buyer@example.com").email,
                                   "password": "correct horse battery staple"})
    assert signed_in.status_code == 302 and signed_in.url == f"/checkout/?item={item.slug}"
    assert "Pay ¥19.00" in visitor.get(signed_in.url).content.decode()
    # A new learner's sign-up carries the same destination.
    assert 'href="/accounts/signup/?next=%2Fcheckout%2F%3Fitem%3D' in host_client("alpha.test").get(
        buy).content.decode()
