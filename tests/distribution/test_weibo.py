"""The Weibo connector against a local stand-in of Weibo's open API."""

import math

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from distribution.connectors.base import Media, PermanentError, Post, PublicationState, TransientError
from distribution.connectors.weibo import WeiboConnector, weibo_length
from distribution.models import Channel
from tests.support.weibo_server import WeiboServer, weibo_units

LINK = ("https://alpha.test/item/data-science-0/?utm_source=weibo&zc=k7m2p9q4rs&utm_medium=distribution"
        "&utm_campaign=k7m2p9q4rs")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def weibo(settings):
    with WeiboServer() as server:
        settings.WEIBO_API_BASE = server.url
        yield server


def connector(token: str) -> WeiboConnector:
    return WeiboConnector(Channel(name="Weibo", kind="weibo"), {"access_token": token})


def cover(name: str, data: bytes, content_type: str) -> Media:
    stored = storages["default"].save(f"tenants/1/covers/{name}", ContentFile(data))
    return Media(name=stored, content_type=content_type, size=len(data))


def make_post(**changes) -> Post:
    fields = dict(item_id=7, version=1, kind="article", title="数据科学入门", summary="从零开始学习数据分析。",
                  html="<p>从零开始学习数据分析。</p>", markdown="从零开始学习数据分析。\n",
                  text=f"【数据科学入门】从零开始学习数据分析。 {LINK}", link=LINK, is_paid=False,
                  price_display="Free", language="zh-hans")
    fields.update(changes)
    return Post(**fields)


def state(external_id: str, url: str = "") -> PublicationState:
    return PublicationState(item_id=7, external_id=external_id, external_url=url, version=1, data={})


def test_weibo_counts_two_latin_characters_as_one_and_a_link_as_ten():
    assert weibo_length("数" * 140) == 140
    assert weibo_length("a" * 280) == 140 and weibo_length("a" * 281) == 141
    assert weibo_length("¥") == 1 and weibo_length("ab数") == 2
    assert weibo_length(f"看 {LINK}") == math.ceil((2 + 1 + 20) / 2)  # 看 (2), space (1), link (20)
    assert weibo_length("x https://a.test/" + "p" * 200) == math.ceil((2 + 215 - 140 + 20) / 2)
    for text in (f"【标题】摘要 {LINK}", "Mixed 中英 text", f"{LINK} 尾巴", "https://a.test/" + "q" * 150):
        assert weibo_length(text) == weibo_units(text)  # the stand-in's independent count agrees


def test_publish_with_cover_is_multipart_and_answers_the_post_url(weibo):
    post = make_post(cover=cover("c.png", PNG, "image/png"))
    receipt = connector(weibo.token).publish(post, delivery_id="dlv_1_1")
    [request] = weibo.requests_to("/2/statuses/share.json")
    assert request.content_type.startswith("multipart/form-data")
    assert request.params["status"] == post.text and request.params["access_token"] == weibo.token
    assert request.files["pic"] == ("c.png", "image/png", PNG)
    [status] = weibo.statuses.values()
    assert receipt.external_id == status["idstr"]
    assert receipt.external_url == f"https://weibo.com/{weibo.uid}/{status['idstr']}"
    assert receipt.note == ""


def test_publish_without_cover_is_a_plain_form(weibo):
    connector(weibo.token).publish(make_post(), delivery_id="dlv_1_2")
    [request] = weibo.requests_to("/2/statuses/share.json")
    assert request.content_type == "application/x-www-form-urlencoded" and request.files == {}


def test_a_cover_weibo_cannot_take_is_left_out_with_a_note(weibo):
    receipt = connector(weibo.token).publish(make_post(cover=cover("c.webp", b"RIFF0000WEBP", "image/webp")),
                                             delivery_id="dlv_1_3")
    [request] = weibo.requests_to("/2/statuses/share.json")
    assert request.files == {} and receipt.external_id
    assert "without the cover" in receipt.note


def test_a_broken_picture_is_refused_permanently(weibo):
    with pytest.raises(PermanentError) as refused:
        connector(weibo.token).publish(make_post(cover=cover("c.jpg", b"not an image", "image/jpeg")),
                                       delivery_id="dlv_1_4")
    assert refused.value.code == "weibo_20007"
    assert weibo.statuses == {}


def test_text_longer_than_140_by_len_but_not_by_weibo_goes_as_it_is(weibo):
    text = f"【数据科学入门】{'从零开始学习数据分析' * 8} {LINK}"
    assert len(text) > 140 and weibo_length(text) <= 140
    post = make_post(text=text)
    conn = connector(weibo.token)
    conn.check(post)
    conn.publish(post, delivery_id="dlv_1_5")
    assert weibo.requests_to("/2/statuses/share.json")[0].params["status"] == text


def test_text_too_long_for_weibo_is_recomposed_within_the_limit(weibo):
    post = make_post(summary="很长的摘要" * 40, text=f"【数据科学入门】{'很长的摘要' * 40} {LINK}")
    conn = connector(weibo.token)
    conn.check(post)
    conn.publish(post, delivery_id="dlv_1_6")
    sent = weibo.requests_to("/2/statuses/share.json")[0].params["status"]
    assert sent.startswith("【数据科学入门】很长的摘要") and sent.endswith(f"… {LINK}")
    assert 130 < weibo_units(sent) <= 140


def test_a_title_too_long_even_alone_is_refused_before_any_request(weibo):
    post = make_post(title="标题" * 70, text=f"【{'标题' * 70}】 {LINK}")
    conn = connector(weibo.token)
    with pytest.raises(PermanentError) as refused:
        conn.check(post)
    assert refused.value.code == "too_long"
    with pytest.raises(PermanentError):
        conn.publish(post, delivery_id="dlv_1_7")
    assert weibo.requests == []


def test_topics_are_neutralised_because_shared_posts_may_not_carry_them(weibo):
    post = make_post(title="#数据# 入门", text=f"【#数据# 入门】摘要 {LINK}")
    connector(weibo.token).publish(post, delivery_id="dlv_1_8")
    sent = weibo.requests_to("/2/statuses/share.json")[0].params["status"]
    assert sent == f"【＃数据＃ 入门】摘要 {LINK}"


def test_an_expired_token_is_invalid_credentials(weibo):
    weibo.expire()
    conn = connector(weibo.token)
    for call in (conn.verify, lambda: conn.publish(make_post(), delivery_id="dlv_1_9")):
        with pytest.raises(PermanentError) as refused:
            call()
        assert refused.value.code == "invalid_credentials" and "21327" in refused.value.message
    with pytest.raises(PermanentError) as unknown:
        connector("2.00unknown").verify()
    assert unknown.value.code == "invalid_credentials"


def test_rate_limit_is_transient_with_a_delay_then_the_post_goes_through(weibo):
    weibo.rate_limit(1)
    conn = connector(weibo.token)
    with pytest.raises(TransientError) as limited:
        conn.publish(make_post(), delivery_id="dlv_1_10")
    assert limited.value.code == "weibo_10023" and limited.value.status == 403
    assert 60 <= limited.value.retry_after <= 3600
    assert weibo.statuses == {}
    assert conn.publish(make_post(), delivery_id="dlv_1_10").external_id in weibo.statuses


def test_system_busy_is_transient(weibo):
    weibo.busy(1)
    with pytest.raises(TransientError) as busy:
        connector(weibo.token).publish(make_post(), delivery_id="dlv_1_11")
    assert busy.value.code == "weibo_10009" and busy.value.retry_after is None


def test_repeated_content_is_refused_permanently(weibo):
    conn = connector(weibo.token)
    conn.publish(make_post(), delivery_id="dlv_1_12")
    with pytest.raises(PermanentError) as repeated:
        conn.publish(make_post(), delivery_id="dlv_1_13")
    assert repeated.value.code == "weibo_20019"


def test_posting_too_often_waits_for_the_next_hour_then_the_post_goes_through(weibo):
    weibo.posting_limit(1)
    conn = connector(weibo.token)
    with pytest.raises(TransientError) as limited:
        conn.publish(make_post(), delivery_id="dlv_1_14")
    assert limited.value.code == "weibo_20016" and 60 <= limited.value.retry_after <= 3600
    assert weibo.statuses == {}
    assert conn.publish(make_post(), delivery_id="dlv_1_14").external_id in weibo.statuses


def test_a_post_weibo_took_but_was_slow_to_show_counts_as_posted_without_an_id(weibo):
    """20032 means the post was made: sending it again would post it twice."""
    weibo.slow(1)
    receipt = connector(weibo.token).publish(make_post(), delivery_id="dlv_1_15")
    assert not receipt.pending and receipt.external_id == "" and "without its id" in receipt.note
    assert len(weibo.statuses) == 1


def test_a_post_without_an_id_is_withdrawn_by_hand(weibo):
    receipt = connector(weibo.token).withdraw(state(""), delivery_id="dlv_1_16")
    assert receipt.pending and receipt.data == {"manual": True}
    assert weibo.requests == []


def test_withdraw_deletes_the_post_and_a_second_withdraw_finds_it_gone(weibo):
    conn = connector(weibo.token)
    receipt = conn.publish(make_post(), delivery_id="dlv_1_14")
    conn.withdraw(state(receipt.external_id, receipt.external_url), delivery_id="dlv_1_15")
    [request] = weibo.requests_to("/2/statuses/destroy.json")
    assert request.method == "POST" and request.params["id"] == receipt.external_id
    assert weibo.statuses == {}
    again = conn.withdraw(state(receipt.external_id), delivery_id="dlv_1_16")
    assert "already gone" in again.note


def test_update_keeps_the_live_post_and_makes_no_call(weibo):
    receipt = connector(weibo.token).update(make_post(version=2, title="新版本"),
                                            state("4900000000000001", "https://weibo.com/1/4900000000000001"),
                                            delivery_id="dlv_1_17")
    assert weibo.requests == []
    assert receipt.external_id == "4900000000000001"
    assert receipt.external_url == "https://weibo.com/1/4900000000000001"
    assert not receipt.pending and "cannot be edited" in receipt.note


def test_verify_names_the_account(weibo):
    assert connector(weibo.token).verify() == f"Weibo account {weibo.uid}"
    [request] = weibo.requests_to("/2/account/get_uid.json")
    assert request.method == "GET"


# --- through the pipeline ----------------------------------------------------------------------------------------

def weibo_channel(tenant, weibo) -> Channel:
    from django_scopes import scope

    from distribution import services

    with scope(tenant=tenant):
        channel, _ = services.channel_save(channel=Channel(tenant=tenant, name="Weibo", kind="weibo"),
                                           credentials={"access_token": weibo.token}, actor=None)
    return channel


def test_a_post_weibo_was_slow_to_show_is_recorded_and_withdrawn_by_hand(tenant_a, weibo,
                                                                         django_capture_on_commit_callbacks):
    """20032: Weibo posted it but did not name it. It is recorded as published (sending it again would post it
    twice), and archiving the item asks staff to delete it on Weibo and mark the withdrawal as done."""
    from django_scopes import scope, scopes_disabled

    from catalog import services as catalog
    from distribution import services
    from distribution.models import Publication
    from tests.distribution.test_pipeline import deliveries, push
    from tests.factories import UserFactory, catalog_item

    channel = weibo_channel(tenant_a, weibo)
    weibo.slow(1)
    item = catalog_item(tenant_a, title="数据科学入门")
    push(tenant_a, django_capture_on_commit_callbacks)
    [posted] = deliveries(tenant_a)
    assert posted.status == "delivered" and "without its id" in posted.message
    assert len(weibo.statuses) == 1 and len(weibo.requests_to("/2/statuses/share.json")) == 1

    with scope(tenant=tenant_a):
        catalog.item_archive(item=item, actor=UserFactory(email="editor@alpha.test"))
    push(tenant_a, django_capture_on_commit_callbacks)
    withdrawal = deliveries(tenant_a)[-1]
    assert (withdrawal.action, withdrawal.status) == ("withdraw", "manual")
    assert "by hand" in withdrawal.message and weibo.requests_to("/2/statuses/destroy.json") == []

    with scope(tenant=tenant_a):
        services.delivery_mark_done(delivery=withdrawal, external_url="", actor=None)
    with scopes_disabled():
        assert Publication.objects.get(channel=channel, item=item).status == "withdrawn"


def test_a_webhook_channel_turned_into_a_weibo_account_posts_the_published_items(tenant_a, weibo,
                                                                                 django_capture_on_commit_callbacks):
    """The webhook's publications end with the type change: the item is posted on Weibo, where an "update" of the
    webhook's publication would have left the account without it."""
    from django_scopes import scope, scopes_disabled

    from distribution import services
    from distribution.models import Publication
    from tests.distribution.test_pipeline import SECRET, deliveries, make_channel, push
    from tests.factories import catalog_item
    from tests.support.webhook_receiver import WebhookReceiver

    with WebhookReceiver(SECRET) as receiver:
        channel = make_channel(tenant_a, receiver.url)
        item = catalog_item(tenant_a, title="数据科学入门")
        push(tenant_a, django_capture_on_commit_callbacks)
    assert len(receiver.received) == 1

    channel.kind, channel.endpoint_url = "weibo", ""
    with scope(tenant=tenant_a):
        services.channel_save(channel=channel, credentials={"access_token": weibo.token}, actor=None)
        with django_capture_on_commit_callbacks(execute=True):
            queued = services.channel_backfill(channel=channel, actor=None)
    push(tenant_a, django_capture_on_commit_callbacks)

    [status_id] = weibo.statuses
    [delivery] = deliveries(tenant_a, channel=channel)
    with scopes_disabled():
        publication = Publication.objects.get(channel=channel, item=item)
    assert queued == 1 and delivery.status == "delivered"
    assert (publication.status, publication.external_id) == ("live", status_id)
