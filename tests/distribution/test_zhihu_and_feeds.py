"""Zhihu export packages and the RSS and Atom feeds of a feed channel."""

import io
import xml.etree.ElementTree as ET
import zipfile
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.urls import include, path
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from catalog import services as catalog
from catalog.models import Category, ItemVersion
from distribution import services
from distribution.adapt import post_for
from distribution.connectors import connector_for
from distribution.connectors.base import PublicationState
from distribution.connectors.feed import FeedConnector
from distribution.connectors.zhihu import ZhihuConnector, zhihu_url_check
from distribution.models import Channel, Delivery, Publication
from marketplace.urls import urlpatterns as project_urlpatterns
from tests.conftest import host_client
from tests.distribution.test_pipeline import push
from tests.factories import UserFactory, catalog_item

# The feeds' routes on top of the project's, for as long as the project's urls do not include them.
urlpatterns = [*project_urlpatterns]
if not any(getattr(p, "namespace", None) == "distribution" for p in project_urlpatterns):
    urlpatterns.append(path("", include("distribution.urls")))

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
AUDIO = b"ID3\x04\x00" + b"\x55" * 4091
ATOM = "{http://www.w3.org/2005/Atom}"


def channel_for(tenant, kind: str, **fields) -> Channel:
    with scopes_disabled():
        return Channel.objects.create(tenant=tenant, name=fields.pop("name", f"{kind} channel"), kind=kind, **fields)


def go_live(channel: Channel, item, status: str = "live") -> Publication:
    with scopes_disabled():
        return Publication.objects.create(tenant=channel.tenant, channel=channel, item=item, version=item.version,
                                          status=status, published_at=timezone.now())


def parse(document: bytes) -> ET.Element:
    return ET.fromstring(document)  # noqa: S314 -- our own view's output, not untrusted input


def post_of(channel: Channel, item):
    with scope(tenant=channel.tenant):
        version = ItemVersion.objects.get(item=item, number=item.version)
        return post_for(channel=channel, connector=connector_for(channel), item=item, version=version)


# --- Zhihu -------------------------------------------------------------------------------------------------------

def test_the_export_package_holds_markdown_html_cover_and_instructions(tenant_a):
    cover = storages["default"].save(f"tenants/{tenant_a.pk}/covers/cover.png", ContentFile(PNG))
    item = catalog_item(tenant_a, title="统计学入门", cover=cover,
                        body="## 第一课\n\n平均数与**中位数**。\n\n- 一\n- 二\n")
    channel = channel_for(tenant_a, "zhihu")
    post = post_of(channel, item)
    package = zipfile.ZipFile(io.BytesIO(ZhihuConnector(channel, {}).export_package(post)))
    assert sorted(package.namelist()) == ["README.txt", "article.html", "article.md", "assets/cover.png"]
    markdown = package.read("article.md").decode()
    assert markdown.startswith("# 统计学入门\n\n")
    assert "## 第一课" in markdown and "平均数与**中位数**。" in markdown and "- 一\n- 二" in markdown
    links = [part.split(")")[0] for part in markdown.split("](")[1:]]
    assert links and all(parse_qs(urlsplit(link).query)["zc"] == [channel.code] for link in links)
    assert package.read("assets/cover.png") == PNG
    html = package.read("article.html").decode()
    assert html.startswith("<!DOCTYPE html>") and "<title>统计学入门</title>" in html
    assert 'src="assets/cover.png"' in html and post.html in html
    readme = package.read("README.txt").decode()
    assert "Mark as published" in readme and "标记为已发布" in readme


def test_without_a_cover_the_package_has_no_assets(tenant_a):
    item = catalog_item(tenant_a, title="No cover", body="Text.")
    channel = channel_for(tenant_a, "zhihu")
    data = ZhihuConnector(channel, {}).export_package(post_of(channel, item))
    package = zipfile.ZipFile(io.BytesIO(data))
    assert sorted(package.namelist()) == ["README.txt", "article.html", "article.md"]
    assert "<img" not in package.read("article.html").decode()


def test_zhihu_deliveries_are_manual_and_never_touch_the_network(tenant_a):
    channel = channel_for(tenant_a, "zhihu")
    conn = connector_for(channel)
    assert isinstance(conn, ZhihuConnector) and conn.manual and not conn.pushes
    post = post_of(channel, catalog_item(tenant_a, title="Manual"))
    receipt = conn.publish(post, delivery_id="dlv_x")
    assert receipt.pending and receipt.data == {"manual": True}
    current = PublicationState(item_id=post.item_id, external_id="", version=1, data={},
                               external_url="https://zhuanlan.zhihu.com/p/123")
    assert "by hand" in conn.withdraw(current, delivery_id="dlv_y").note
    assert "Nothing to verify" in conn.verify()


@pytest.mark.parametrize("url", ["https://zhuanlan.zhihu.com/p/123456",
                                 "https://www.zhihu.com/question/1/answer/2"])
def test_zhihu_article_urls_are_accepted(url):
    zhihu_url_check(url)


@pytest.mark.parametrize("url", ["http://zhuanlan.zhihu.com/p/1", "https://zhihu.com.evil.test/p/1",
                                 "https://evil.test/p/1?next=zhuanlan.zhihu.com", "javascript:alert(1)",
                                 "https://zhuanlan.zhihu.com/", "https://me@zhuanlan.zhihu.com/p/1", ""])
def test_other_urls_are_refused(url):
    with pytest.raises(ValueError):
        zhihu_url_check(url)


# --- feeds ------------------------------------------------------------------------------------------------------

@pytest.fixture
def feed(tenant_a):
    """A feed channel with a free audio item, a paid article and a withdrawn item."""
    media = storages["private"].save(f"tenants/{tenant_a.pk}/media/talk.mp3", ContentFile(AUDIO))
    audio = catalog_item(tenant_a, title="Free talk", kind="audio", media=media, description="A talk on maps.")
    paid = catalog_item(tenant_a, title="Paid course", price=9900, description="What you will learn.",
                        body="SECRET CHAPTER: the paid body.")
    gone = catalog_item(tenant_a, title="Withdrawn item", body="Gone.")
    channel = channel_for(tenant_a, "feed")
    go_live(channel, audio)
    go_live(channel, paid)
    go_live(channel, gone, status="withdrawn")
    return channel, audio, paid


@pytest.mark.urls(__name__)
def test_rss_lists_the_live_items_with_tracked_links_and_enclosures(feed):
    channel, audio, paid = feed
    response = host_client("alpha.test").get(f"/feeds/{channel.code}.rss")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/rss+xml")
    assert "public" in response["Cache-Control"] and "max-age=300" in response["Cache-Control"]
    root = parse(response.content)
    assert root.tag == "rss" and root.get("version") == "2.0"
    items = {i.findtext("title"): i for i in root.find("channel").findall("item")}
    assert sorted(items) == ["Free talk", "Paid course"]
    for item in items.values():
        assert parse_qs(urlsplit(item.findtext("link")).query)["zc"] == [channel.code]
        assert item.find("guid").get("isPermaLink") == "false" and item.findtext("guid").startswith("tag:alpha.test,")
        assert item.findtext("pubDate")
    enclosure = items["Free talk"].find("enclosure")
    assert enclosure.get("url") == f"http://alpha.test/item/{audio.slug}/media/"
    assert enclosure.get("length") == str(len(AUDIO)) and enclosure.get("type") == "audio/mpeg"
    paid_text = items["Paid course"].findtext("description")
    assert "What you will learn." in paid_text and "SECRET CHAPTER" not in response.content.decode()
    assert items["Paid course"].find("enclosure") is None


@pytest.mark.urls(__name__)
def test_atom_has_the_same_entries(feed):
    channel, audio, paid = feed
    response = host_client("alpha.test").get(f"/feeds/{channel.code}.atom")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/atom+xml")
    root = parse(response.content)
    assert root.tag == f"{ATOM}feed"
    entries = {e.findtext(f"{ATOM}title"): e for e in root.findall(f"{ATOM}entry")}
    assert sorted(entries) == ["Free talk", "Paid course"]
    talk = entries["Free talk"]
    assert talk.findtext(f"{ATOM}id") == f"tag:alpha.test,{channel.tenant.created_at:%Y-%m-%d}:item/{audio.pk}"
    [alternate] = [link for link in talk.findall(f"{ATOM}link") if link.get("rel") == "alternate"]
    assert f"zc={channel.code}" in alternate.get("href")
    [enclosure] = [link for link in talk.findall(f"{ATOM}link") if link.get("rel") == "enclosure"]
    assert enclosure.get("length") == str(len(AUDIO)) and enclosure.get("type") == "audio/mpeg"
    assert "SECRET CHAPTER" not in response.content.decode()


@pytest.mark.urls(__name__)
def test_another_storefront_cannot_read_the_feed(feed, tenant_b):
    channel = feed[0]
    assert host_client("beta.test").get(f"/feeds/{channel.code}.rss").status_code == 404
    assert host_client("beta.test").get(f"/feeds/{channel.code}.atom").status_code == 404
    assert host_client("alpha.test").get("/feeds/nosuchcode.rss").status_code == 404


@pytest.mark.urls(__name__)
def test_a_disabled_channel_or_another_kind_has_no_feed(feed, tenant_a):
    channel = feed[0]
    with scopes_disabled():
        Channel.objects.filter(pk=channel.pk).update(is_enabled=False)
    assert host_client("alpha.test").get(f"/feeds/{channel.code}.rss").status_code == 404
    weibo = channel_for(tenant_a, "weibo")
    assert host_client("alpha.test").get(f"/feeds/{weibo.code}.rss").status_code == 404


@pytest.mark.urls(__name__)
def test_the_feed_connector_names_its_feeds_and_sends_nothing(feed):
    channel = feed[0]
    conn = connector_for(channel)
    assert isinstance(conn, FeedConnector) and not conn.pushes
    rss, atom = f"http://alpha.test/feeds/{channel.code}.rss", f"http://alpha.test/feeds/{channel.code}.atom"
    assert conn.verify() == f"RSS: {rss} · Atom: {atom}"
    post = post_of(channel, feed[1])
    assert conn.publish(post, delivery_id="dlv_z").external_url == rss
    assert host_client("alpha.test").get(urlsplit(rss).path).status_code == 200


@pytest.mark.urls(__name__)
def test_a_control_character_pasted_into_one_title_does_not_take_the_feed_down(feed, tenant_a):
    channel = feed[0]
    go_live(channel, catalog_item(tenant_a, title="Reading\x0cthe census", description="Tables\x1b and maps."))
    client = host_client("alpha.test")
    client.raise_request_exception = False
    rss = client.get(f"/feeds/{channel.code}.rss")
    atom = client.get(f"/feeds/{channel.code}.atom")
    assert (rss.status_code, atom.status_code) == (200, 200)
    titles = sorted(i.findtext("title") for i in parse(rss.content).find("channel").findall("item"))
    assert titles == ["Free talk", "Paid course", "Reading the census"]
    entries = sorted(e.findtext(f"{ATOM}title") for e in parse(atom.content).findall(f"{ATOM}entry"))
    assert entries == ["Free talk", "Paid course", "Reading the census"]


def test_archiving_while_a_package_waits_to_be_posted_withdraws_it_once_it_is_marked_published(
        tenant_a, django_capture_on_commit_callbacks):
    channel = channel_for(tenant_a, "zhihu")
    item = catalog_item(tenant_a, title="Posted by hand")
    push(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():
        publish = Delivery.objects.get(item=item, action="publish")
    assert publish.status == "manual"
    staff = UserFactory(email="ed@alpha.test")
    with scope(tenant=tenant_a):
        catalog.item_archive(item=item, actor=staff)  # staff may have posted the package already
    push(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():
        withdrawal = Delivery.objects.get(item=item, action="withdraw")
    assert withdrawal.status == "queued" and "marked as published" in withdrawal.message

    with scope(tenant=tenant_a):  # they had: they record where
        services.delivery_mark_done(delivery=publish, external_url="https://zhuanlan.zhihu.com/p/1", actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    withdrawal.refresh_from_db()
    assert withdrawal.status == "manual" and "Remove the post" in withdrawal.message
    with scope(tenant=tenant_a):
        services.delivery_mark_done(delivery=withdrawal, external_url="", actor=staff)
    with scopes_disabled():
        assert Publication.objects.get(channel=channel, item=item).status == "withdrawn"


def test_a_package_waiting_to_be_posted_is_withdrawn_when_its_item_leaves_the_channels_categories(
        tenant_a, django_capture_on_commit_callbacks):
    """The channel takes only "Free" items; the item is made paid and taken out of "Free" while its package waits to
    be posted by hand. Staff may have posted it already: once they mark it posted, its withdrawal is due."""
    with scopes_disabled():
        free = Category.objects.create(tenant=tenant_a, name="Free", slug="free")
    channel = channel_for(tenant_a, "zhihu")
    with scopes_disabled():
        channel.categories.add(free)
    item = catalog_item(tenant_a, title="Free guide", body="THE WHOLE TEXT", published=False)
    staff = UserFactory(email="ed@alpha.test")
    with scope(tenant=tenant_a):
        item.categories.add(free)
        catalog.item_submit(item=item, actor=staff)
        catalog.item_approve(item=item, actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():
        publish = Delivery.objects.get(item=item, action="publish")
    assert publish.status == "manual"
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        item.price = 4900
        item.save()
        item.categories.remove(free)
        catalog.item_publish_changes(item=item, actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():
        withdrawal = Delivery.objects.get(item=item, action="withdraw")
    assert withdrawal.status == "queued" and "marked as published" in withdrawal.message
    with scope(tenant=tenant_a):
        services.delivery_mark_done(delivery=publish, external_url="https://zhuanlan.zhihu.com/p/2", actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    withdrawal.refresh_from_db()
    assert withdrawal.status == "manual" and "Remove the post" in withdrawal.message


@pytest.mark.urls(__name__)
def test_the_feed_lists_only_items_on_sale_each_in_its_current_version(tenant_a):
    channel = channel_for(tenant_a, "feed")
    archived = catalog_item(tenant_a, title="Archived item", body="Gone.")
    paid = catalog_item(tenant_a, title="Paid now", description="Teaser.", body="SECRET CHAPTER body.")
    priced = catalog_item(tenant_a, title="Priced now", description="Short.", body="PRICED CHAPTER body.")
    for item in (archived, paid, priced):
        go_live(channel, item)  # version 1, free, as the last delivery recorded it
    staff = UserFactory(email="ed@alpha.test")
    with scope(tenant=tenant_a):
        catalog.item_archive(item=archived, actor=staff)
        paid.price = 9900
        paid.save()
        catalog.item_publish_changes(item=paid, actor=staff)  # version 2, paid: its update has not run
        priced.price = 4900  # on sale for a price already, the new version still in the works
        priced.save()
    body = host_client("alpha.test").get(f"/feeds/{channel.code}.rss").content.decode()
    titles = sorted(i.findtext("title") for i in parse(body.encode()).find("channel").findall("item"))
    assert titles == ["Paid now", "Priced now"]
    assert "Teaser." in body and "SECRET CHAPTER" not in body and "PRICED CHAPTER" not in body


@pytest.mark.urls(__name__)
def test_an_item_archived_while_the_feed_was_off_is_gone_when_it_is_back(tenant_a,
                                                                         django_capture_on_commit_callbacks):
    channel = channel_for(tenant_a, "feed")
    item = catalog_item(tenant_a, title="Soon archived", body="Body text.")
    push(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():
        Channel.objects.filter(pk=channel.pk).update(is_enabled=False)  # staff switch the feed off for a while
    with scope(tenant=tenant_a):
        catalog.item_archive(item=item, actor=UserFactory(email="ed@alpha.test"))
    push(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():
        assert Delivery.objects.get(item=item, action="withdraw").status == "delivered"
        assert Publication.objects.get(channel=channel, item=item).status == "withdrawn"
        Channel.objects.filter(pk=channel.pk).update(is_enabled=True)  # ... and back on
    assert "Soon archived" not in host_client("alpha.test").get(f"/feeds/{channel.code}.rss").content.decode()


@pytest.mark.urls(__name__)
def test_an_item_made_paid_while_the_feed_was_off_shows_only_its_teaser_when_it_is_back(
        tenant_a, django_capture_on_commit_callbacks):
    channel = channel_for(tenant_a, "feed")
    item = catalog_item(tenant_a, title="Free for now", description="Teaser.", body="SECRET CHAPTER body.")
    push(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():
        Channel.objects.filter(pk=channel.pk).update(is_enabled=False)
    with scope(tenant=tenant_a):  # the team makes it paid: version 2
        item.price = 9900
        item.save()
        catalog.item_publish_changes(item=item, actor=UserFactory(email="ed@alpha.test"))
    push(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():
        assert Publication.objects.get(channel=channel, item=item).version == 2
        Channel.objects.filter(pk=channel.pk).update(is_enabled=True)
    body = host_client("alpha.test").get(f"/feeds/{channel.code}.rss").content.decode()
    assert "Free for now" in body and "Teaser." in body and "SECRET CHAPTER" not in body


@pytest.mark.urls(__name__)
def test_feeds_and_pushes_credit_creators_by_the_name_they_have_now(tenant_a, django_capture_on_commit_callbacks):
    """A published version keeps the names it was published with (its content hash is in the chain), but posts
    credit creators as they are named now, as they show categories and tags: a creator profile named after the
    person's address and renamed when they deleted their account is not shown under the address in the public feed
    or in any later push."""
    from accounts.models import Role
    from accounts.privacy import user_erase
    from tests.factories import catalog_creator, member

    writer = member(tenant_a, Role.CREATOR, email="lin.private@example.com")
    profile = catalog_creator(tenant_a, "lin.private", writer)
    item = catalog_item(tenant_a, title="Fresh", creators=[profile])
    channel = channel_for(tenant_a, "feed")
    go_live(channel, item)
    assert "lin.private" in host_client("alpha.test").get(f"/feeds/{channel.code}.rss").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        user_erase(user=writer)
    assert "lin.private" not in host_client("alpha.test").get(f"/feeds/{channel.code}.rss").content.decode()
    assert "lin.private" not in post_of(channel, item).creators
