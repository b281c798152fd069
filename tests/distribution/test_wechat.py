"""The WeChat connector against a stand-in of WeChat's official account API on 127.0.0.1, on its own and through the
push pipeline (asynchronous publishing: takeovers, newer versions and archiving while WeChat is still publishing)."""

import json
import time
from datetime import date, datetime, timedelta
from io import BytesIO
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from PIL import Image

from accounts.models import Role
from catalog import services as catalog
from catalog.models import ContentItem
from distribution import pipeline, services
from distribution.connectors.base import (
    Media,
    PermanentError,
    Post,
    PublicationState,
    Receipt,
    StatRow,
    TransientError,
)
from distribution.connectors.wechat import WeChatConnector, wechat_content
from distribution.models import Channel, Delivery, DeliveryAttempt, Publication
from marketplace.models import AuditLog
from tests.conftest import host_client
from tests.distribution.test_pipeline import deliveries, push
from tests.factories import UserFactory, catalog_item, member
from tests.support.stand_in import StandIn, StandInHandler
from tests.support.wechat_server import WeChatServer

TITLE = "知库：十分钟读懂《资本论》"
LINK = "https://alpha.test/items/capital/?zc=abc123&utm_source=wechat"
WECHAT_IMG = "http://mmbiz.qpic.cn/mmbiz_png/abc/0?wx_fmt=png"


@pytest.fixture
def wechat(settings):
    with WeChatServer() as server:
        settings.WECHAT_API_BASE = server.url
        yield server


def png(size: int = 8) -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def stored(data: bytes, suffix: str = "png") -> str:
    return default_storage.save(f"covers/{uuid4().hex}.{suffix}", ContentFile(data))


def make_cover(data: bytes | None = None, content_type: str = "image/png") -> Media:
    data = png() if data is None else data
    return Media(name=stored(data), content_type=content_type, size=len(data))


def make_post(**fields) -> Post:
    values = {
        "item_id": 7, "version": 1, "kind": "article", "title": TITLE, "summary": "一本书的导读。" * 30,
        "html": f'<p>正文第一段。</p><img src="https://cdn.alpha.test/a.png" alt="x"><img src="{WECHAT_IMG}">'
                f'<p><a href="{LINK}">在知库阅读全文</a></p>',
        "markdown": "", "text": "", "link": LINK, "is_paid": True, "price_display": "¥19.00", "language": "zh-hans",
        "cover": make_cover(),
    }
    values.update(fields)
    return Post(**values)


def make_connector(server: WeChatServer, *, secret: str | None = None, appid: str | None = None,
                   **options) -> WeChatConnector:
    channel = Channel(name="WX", kind="wechat", options={"author": "知库编辑部", **options})
    return WeChatConnector(channel, {"appid": appid or server.appid, "appsecret": secret or server.secret})


def published(connector: WeChatConnector, post: Post | None = None, *, delivery_id: str = "d1"):
    """Publish and poll until WeChat says published; returns the final receipt."""
    receipt = connector.publish(post or make_post(), delivery_id=delivery_id)
    for _ in range(5):
        receipt = connector.confirm(receipt)
        if not receipt.pending:
            return receipt
    raise AssertionError("never published")


def state(receipt, version: int = 1) -> PublicationState:
    return PublicationState(item_id=7, external_id=receipt.external_id, external_url=receipt.external_url,
                            version=version, data=receipt.data)


def yesterday_in_china() -> date:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date() - timedelta(days=1)


# --- the whole publication ---------------------------------------------------------------------------------------

def test_publish_is_pending_until_wechat_has_published_it(settings):
    with WeChatServer(publish_polls=2) as wechat:
        settings.WECHAT_API_BASE = wechat.url
        connector = make_connector(wechat, need_open_comment=True)
        post = make_post()

        receipt = connector.publish(post, delivery_id="d1")

        assert receipt.pending
        assert set(receipt.data) == {"thumb_media_id", "draft_media_id", "publish_id", "msg_data_id"}
        assert receipt.external_id == receipt.data["publish_id"]
        assert receipt.data["thumb_media_id"] in wechat.materials
        assert "1 image" in receipt.note  # the one not hosted by WeChat
        upload = wechat.requests_to("/cgi-bin/material/add_material")[0]
        assert upload.query["type"] == "image"
        article = wechat.requests_to("/cgi-bin/draft/add")[0].json()["articles"][0]
        assert article["title"] == TITLE and article["author"] == "知库编辑部"
        assert article["thumb_media_id"] == receipt.data["thumb_media_id"]
        assert article["content_source_url"] == LINK
        assert article["need_open_comment"] == 1 and article["only_fans_can_comment"] == 0
        assert "cdn.alpha.test" not in article["content"] and WECHAT_IMG in article["content"]
        assert f'href="{LINK}"' in article["content"]
        assert len(article["digest"]) == 128 and article["digest"].endswith("…")
        submitted = wechat.requests_to("/cgi-bin/freepublish/submit")[0].json()
        assert submitted == {"media_id": receipt.data["draft_media_id"]}

        still = connector.confirm(receipt)
        assert still.pending and still.external_id == receipt.external_id
        still = connector.confirm(still)
        assert still.pending
        done = connector.confirm(still)

    assert not done.pending
    assert done.external_id == done.data["article_id"] and done.data["article_id"] in wechat.articles
    assert done.external_url.startswith("http://mp.weixin.qq.com/s?")
    assert done.data["msg_data_id"] == receipt.data["msg_data_id"]
    assert [r.json() for r in wechat.requests_to("/cgi-bin/freepublish/get")] == [
        {"publish_id": receipt.data["publish_id"]}] * 3


def test_json_is_sent_as_utf8_not_escaped(wechat):
    make_connector(wechat).publish(make_post(), delivery_id="d1")

    draft = wechat.requests_to("/cgi-bin/draft/add")[0]
    assert draft.header("Content-Type") == "application/json; charset=utf-8"
    assert TITLE.encode("utf-8") in draft.body
    assert b"\\u" not in draft.body
    assert draft.errcode == 0


def test_a_failed_publication_is_permanent(settings):
    with WeChatServer(publish_polls=0, publish_outcome=4) as wechat:
        settings.WECHAT_API_BASE = wechat.url
        connector = make_connector(wechat)
        receipt = connector.publish(make_post(), delivery_id="d1")

        with pytest.raises(PermanentError) as failure:
            connector.confirm(receipt)

    assert failure.value.code == "wechat_publish_4"
    assert "review" in failure.value.message


def test_a_retry_reuses_the_cover_and_the_draft(wechat):
    connector = make_connector(wechat)
    wechat.fail(-1, path="/cgi-bin/freepublish/submit")

    with pytest.raises(TransientError) as busy:
        connector.publish(make_post(), delivery_id="d1")
    receipt = connector.publish(make_post(), delivery_id="d1")

    assert busy.value.code == "wechat_-1" and busy.value.retry_after == 10
    assert receipt.pending
    assert len(wechat.requests_to("/cgi-bin/material/add_material")) == 1
    assert len(wechat.requests_to("/cgi-bin/draft/add")) == 1
    assert len(wechat.requests_to("/cgi-bin/freepublish/submit")) == 2


def test_another_delivery_saves_a_new_draft(wechat):
    connector = make_connector(wechat)
    connector.publish(make_post(), delivery_id="d1")
    connector.publish(make_post(), delivery_id="d2")

    assert len(wechat.requests_to("/cgi-bin/draft/add")) == 2
    assert len(wechat.requests_to("/cgi-bin/freepublish/submit")) == 2


# --- access token ------------------------------------------------------------------------------------------------

def test_one_token_serves_several_operations(wechat):
    first = published(make_connector(wechat), delivery_id="d1")
    published(make_connector(wechat), delivery_id="d2")  # a new connector for the same account: same cache
    make_connector(wechat).withdraw(state(first), delivery_id="d3")

    assert wechat.requests_to("/cgi-bin/token") == []
    [token] = wechat.requests_to("/cgi-bin/stable_token")
    assert token.method == "POST" and token.query == {}
    assert token.json() == {"grant_type": "client_credential", "appid": wechat.appid, "secret": wechat.secret,
                            "force_refresh": False}
    assert len({r.query["access_token"] for r in wechat.requests if r.path != "/cgi-bin/stable_token"}) == 1


def test_an_expired_token_is_replaced_and_the_call_retried_once(wechat):
    wechat.publish_polls = 0
    connector = make_connector(wechat)
    receipt = connector.publish(make_post(), delivery_id="d1")
    wechat.expire_tokens()

    done = connector.confirm(receipt)

    assert not done.pending
    polls = wechat.requests_to("/cgi-bin/freepublish/get")
    assert [p.errcode for p in polls] == [42001, 0]  # expired, then retried with a new token
    tokens = wechat.requests_to("/cgi-bin/stable_token")
    assert [t.json()["force_refresh"] for t in tokens] == [False, False]  # WeChat hands out a new one unforced
    assert polls[0].query["access_token"] != polls[1].query["access_token"]


def test_a_token_another_caller_replaced_is_renewed_without_replacing_theirs(wechat):
    """Another tool of the account forced a refresh of the stable token: ours is refused, and the current one WeChat
    hands out is used, without forcing a refresh that would in turn invalidate the other tool's."""
    wechat.publish_polls = 0
    connector = make_connector(wechat)
    receipt = connector.publish(make_post(), delivery_id="d1")
    theirs = requests.post(f"{wechat.url}/cgi-bin/stable_token", json={
        "grant_type": "client_credential", "appid": wechat.appid, "secret": wechat.secret,
        "force_refresh": True}, timeout=10).json()["access_token"]

    done = connector.confirm(receipt)

    assert not done.pending
    polls = wechat.requests_to("/cgi-bin/freepublish/get")
    assert [p.errcode for p in polls] == [40001, 0] and polls[1].query["access_token"] == theirs
    assert [t.json()["force_refresh"] for t in wechat.requests_to("/cgi-bin/stable_token")] == [False, True, False]


def test_a_second_refusal_is_not_retried_again(wechat):
    connector = make_connector(wechat)
    receipt = connector.publish(make_post(), delivery_id="d1")
    wechat.fail(40001, times=5, path="/cgi-bin/freepublish/get")

    with pytest.raises(TransientError) as refused:
        connector.confirm(receipt)

    assert refused.value.code == "wechat_40001"
    assert len(wechat.requests_to("/cgi-bin/freepublish/get")) == 2
    # WeChat handed out the token it refused: only then is a new one forced
    assert [t.json()["force_refresh"] for t in wechat.requests_to("/cgi-bin/stable_token")] == [False, False, True]


def test_pushing_to_wechat_does_not_invalidate_the_accounts_other_access_token(tenant_a, settings,
                                                                               django_capture_on_commit_callbacks):
    """Each ``GET /cgi-bin/token`` replaces the account's token (the old one lasts five minutes more), so an official
    account run with another tool as well (its menu, auto-replies, a CRM: anything holding a token) would stop
    working for that tool minutes after Zhiku fetched its own token, and again at every refresh. The stable token
    Zhiku uses leaves it alone."""
    with WeChatServer(token_overlap=0.2) as wechat:
        settings.WECHAT_API_BASE = wechat.url
        other = requests.get(f"{wechat.url}/cgi-bin/token", params={
            "grant_type": "client_credential", "appid": wechat.appid, "secret": wechat.secret},
            timeout=10).json()["access_token"]
        wechat_channel(tenant_a, wechat)
        catalog_item(tenant_a, title="Capital in ten minutes", cover=stored(png()))
        beats(tenant_a, django_capture_on_commit_callbacks)
        time.sleep(0.3)
        answer = requests.post(f"{wechat.url}/datacube/getarticleread", params={"access_token": other},
                               json={"begin_date": "2025-12-01", "end_date": "2025-12-01"}, timeout=10).json()

        assert len(wechat.finish_jobs()) == 1
        assert answer.get("errcode", 0) == 0, answer  # the school's other tool still works


@pytest.mark.parametrize(("credentials", "errcode"), [
    ({"secret": "0" * 32}, 40125),
    ({"appid": "wx0000000000000000"}, 40013),
])
def test_wrong_credentials_are_permanent(wechat, credentials, errcode):
    with pytest.raises(PermanentError) as refused:
        make_connector(wechat, **credentials).publish(make_post(), delivery_id="d1")

    assert refused.value.code == "invalid_credentials"
    assert f"WeChat {errcode}" in refused.value.message
    assert [r.path for r in wechat.requests] == ["/cgi-bin/stable_token"]


def test_a_server_off_the_ip_whitelist_is_told_so(wechat):
    wechat.block_ip()

    with pytest.raises(PermanentError) as refused:
        make_connector(wechat).verify()

    assert refused.value.code == "invalid_credentials"
    assert "whitelist" in refused.value.message and "127.0.0.1" in refused.value.message


def test_a_wrong_secret_does_not_borrow_a_cached_token(wechat):
    make_connector(wechat).verify()

    with pytest.raises(PermanentError):
        make_connector(wechat, secret="f" * 32).publish(make_post(), delivery_id="d1")


def test_verify_names_the_account(wechat):
    message = make_connector(wechat).verify()

    assert wechat.appid in message and "7200" in message


# --- errors ------------------------------------------------------------------------------------------------------

def test_the_daily_quota_waits_for_the_reset(wechat):
    wechat.fail(45009, times=3)

    with pytest.raises(TransientError) as limited:
        make_connector(wechat).publish(make_post(), delivery_id="d1")

    assert limited.value.code == "wechat_45009"
    assert 60 <= limited.value.retry_after <= 24 * 3600
    assert len(wechat.requests_to("/cgi-bin/draft/add")) == 0


def test_the_minute_quota_waits_a_minute(wechat):
    wechat.fail(45011, path="/cgi-bin/draft/add")

    with pytest.raises(TransientError) as limited:
        make_connector(wechat).publish(make_post(), delivery_id="d1")

    assert limited.value.code == "wechat_45011" and limited.value.retry_after == 60


class _HttpsRedirect(StandInHandler):
    """What an http->https redirect (or an egress proxy) answers: the same path and query on another scheme."""

    def handle_request(self, method):
        self.reply(301, b"", "text/html", {"Location": "https://api.weixin.qq.com" + self.path})


class HttpsRedirect(StandIn):
    handler = _HttpsRedirect


def test_a_redirect_is_named_without_the_credentials_its_request_carried(tenant_a, settings):
    appsecret = "TOPSECRETAPPSECRET0123456789abcd"
    with HttpsRedirect() as redirector:
        settings.WECHAT_API_BASE = redirector.url
        with scope(tenant=tenant_a):
            channel, _ = services.channel_save(
                channel=Channel(tenant=tenant_a, name="WX", kind="wechat", options={}),
                credentials={"appid": "wx1234567890", "appsecret": appsecret}, actor=None)
            services.channel_verify(channel=channel, actor=None)
    assert "https://api.weixin.qq.com/cgi-bin/stable_token" in channel.verify_message
    page = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True)).get(
        f"/admin/distribution/channel/{channel.pk}/change/").content.decode()
    with scopes_disabled():
        audit = AuditLog.objects.get(action="distribution.channel_verified")
    # "last connection test" on the channel's admin page (any staff member sees it), and the audit entry's data
    assert "a redirect to https://api.weixin.qq.com/cgi-bin/stable_token" in page
    assert appsecret not in page and appsecret not in json.dumps(audit.data)


def test_an_http_error_is_transient(wechat):
    wechat.fail_http(502)

    with pytest.raises(TransientError) as failure:
        make_connector(wechat).verify()

    assert failure.value.code == "http_502" and failure.value.status == 502


def test_a_material_deleted_between_retries_is_an_invalid_media_id(wechat):
    connector = make_connector(wechat)
    wechat.fail(-1, path="/cgi-bin/draft/add")
    with pytest.raises(TransientError):
        connector.publish(make_post(), delivery_id="d1")
    (thumb,) = wechat.materials
    wechat.delete_material(thumb)

    with pytest.raises(PermanentError) as invalid:
        connector.publish(make_post(), delivery_id="d1")

    assert invalid.value.code == "wechat_40007"
    assert wechat.requests_to("/cgi-bin/draft/add")[-1].errcode == 40007


def test_a_file_that_is_not_an_image_is_refused_by_wechat(wechat):
    cover = make_cover(b"%PDF-1.4 not an image at all")  # named .png, labelled image/png

    with pytest.raises(PermanentError) as refused:
        make_connector(wechat).publish(make_post(cover=cover), delivery_id="d1")

    assert refused.value.code == "wechat_40113"
    assert not wechat.requests_to("/cgi-bin/draft/add")


def test_a_cover_over_wechats_size_is_refused(settings):
    with WeChatServer(image_max_bytes=64) as wechat:
        settings.WECHAT_API_BASE = wechat.url
        cover = make_cover(png(64))
        cover = Media(name=cover.name, content_type="image/png")  # size unknown to ``check``

        with pytest.raises(PermanentError) as refused:
            make_connector(wechat).publish(make_post(cover=cover), delivery_id="d1")

    assert refused.value.code == "wechat_40009"


# --- checks before any call --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "options", "code"), [
    ({"title": "长" * 33}, {}, "too_long"),
    ({"cover": None}, {}, "cover_missing"),
    ({"cover": Media(name="covers/x.webp", content_type="image/webp", size=10)}, {}, "cover_type"),
    ({"cover": Media(name="covers/x.png", content_type="image/png", size=11 * 1024 * 1024)}, {}, "cover_too_large"),
    ({"html": "<p>" + "字" * 20_000 + "</p>"}, {}, "too_long"),
    ({"html": "<p>" + "字" * 19_993 + "</p>"}, {}, "too_long"),  # 20,000 characters with the tags
    ({}, {"author": "作" * 17}, "too_long"),
    ({"link": "https://alpha.test/?q=" + "x" * 1100}, {}, "too_long"),
])
def test_what_wechat_would_refuse_is_refused_without_a_call(wechat, fields, options, code):
    connector = make_connector(wechat, **options)
    post = make_post(**fields)

    with pytest.raises(PermanentError) as refused:
        connector.check(post)
    with pytest.raises(PermanentError):
        connector.publish(post, delivery_id="d1")

    assert refused.value.code == code
    assert wechat.requests == []


def test_images_hosted_elsewhere_do_not_count_against_the_limit(wechat):
    body = "<p>" + "字" * 19_900 + "</p>" + '<img src="https://cdn.alpha.test/big.png">' * 10

    make_connector(wechat).check(make_post(html=body))

    assert wechat_content(body) == ("<p>" + "字" * 19_900 + "</p>", 10)


def test_content_keeps_only_wechat_images():
    body = (f"<p>a</p><img alt='x' src='{WECHAT_IMG}'><IMG SRC=https://evil.test/a.png>"
            '<img src="//mmbiz.qpic.cn/mmbiz_jpg/y/0"><img src="https://mmbiz.qpic.cn.evil.test/z.png">')

    content, dropped = wechat_content(body)

    assert dropped == 2
    assert content == f"<p>a</p><img alt='x' src='{WECHAT_IMG}'><img src=\"//mmbiz.qpic.cn/mmbiz_jpg/y/0\">"


# --- withdraw and update -----------------------------------------------------------------------------------------

def test_withdraw_deletes_the_article(wechat):
    connector = make_connector(wechat)
    live = published(connector)

    receipt = connector.withdraw(state(live), delivery_id="d2")

    assert receipt.external_id == live.data["article_id"]
    assert wechat.requests_to("/cgi-bin/freepublish/delete")[0].json() == {
        "article_id": live.data["article_id"], "index": 1}
    assert wechat.articles[live.data["article_id"]]["deleted"]
    with pytest.raises(PermanentError) as gone:  # WeChat now reports the publication as deleted
        connector.confirm(Receipt(external_id=live.data["publish_id"], pending=True, data=live.data))
    assert gone.value.code == "wechat_publish_5"


def test_update_publishes_the_new_version_then_deletes_the_old_one(wechat):
    connector = make_connector(wechat)
    old = published(connector, delivery_id="d1")
    revised = make_post(version=2, title="知库：读懂《资本论》（修订版）")

    pending = connector.update(revised, state(old), delivery_id="d2")

    assert pending.pending and pending.data["replaces_article_id"] == old.data["article_id"]
    assert not wechat.articles[old.data["article_id"]]["deleted"]  # still live while the new one is publishing

    new = connector.confirm(connector.confirm(pending))

    assert not new.pending and new.external_id != old.external_id
    assert wechat.articles[new.external_id]["article"]["title"] == "知库：读懂《资本论》（修订版）"
    assert wechat.articles[old.data["article_id"]]["deleted"]
    assert not wechat.articles[new.external_id]["deleted"]
    assert "replaces_article_id" not in new.data


def test_an_update_that_fails_review_keeps_the_old_article(wechat):
    connector = make_connector(wechat)
    old = published(connector, delivery_id="d1")
    wechat.publish_outcome = 4

    pending = connector.update(make_post(version=2), state(old), delivery_id="d2")
    with pytest.raises(PermanentError):
        connector.confirm(connector.confirm(pending))

    assert not wechat.articles[old.data["article_id"]]["deleted"]
    assert not wechat.requests_to("/cgi-bin/freepublish/delete")


def test_an_old_article_already_gone_does_not_fail_the_update(wechat):
    connector = make_connector(wechat)
    old = published(connector, delivery_id="d1")
    connector.withdraw(state(old), delivery_id="d2")

    pending = connector.update(make_post(version=2), state(old), delivery_id="d4")
    new = connector.confirm(connector.confirm(pending))

    assert not new.pending
    assert old.data["article_id"] in new.note


# --- stats -------------------------------------------------------------------------------------------------------

def test_stats_count_this_channels_readers_and_sharers(wechat):
    connector = make_connector(wechat)
    live = published(connector)
    day = yesterday_in_china()
    wechat.set_article_stats(day, f"{live.data['msg_data_id']}_1", read_user=120, share_user=7)
    wechat.set_article_stats(day, "1999999999_1", read_user=1000, share_user=50)  # posted on the account by hand
    wechat.set_article_stats(day - timedelta(days=1), f"{live.data['msg_data_id']}_1", read_user=5)

    rows = connector.stats([state(live)], day=day)

    assert rows == [StatRow(day=day, impressions=120, engagements=7)]
    read = wechat.requests_to("/datacube/getarticleread")[0]
    assert read.json() == {"begin_date": day.isoformat(), "end_date": day.isoformat()}
    assert read.errcode == 0 and wechat.requests_to("/datacube/getarticleshare")[0].errcode == 0


def test_stats_without_message_ids_are_the_accounts(wechat):
    day = yesterday_in_china()
    wechat.set_article_stats(day, "1999999999_1", read_user=1000, share_user=50)
    wechat.set_article_stats(day, "1999999998_2", read_user=30)
    legacy = PublicationState(item_id=1, external_id="a1", external_url="", version=1, data={"article_id": "a1"})

    assert make_connector(wechat).stats([legacy], day=day) == [StatRow(day=day, impressions=1030, engagements=50)]


@pytest.mark.parametrize("which", ["long ago", "today"])
def test_stats_outside_what_wechat_holds_make_no_call(wechat, which):
    # Today is read when the test runs, not when it is collected: a run that starts before midnight in China
    # and reaches this test after it would otherwise ask about yesterday, which WeChat holds.
    day = date(2025, 10, 31) if which == "long ago" else datetime.now(ZoneInfo("Asia/Shanghai")).date()
    assert make_connector(wechat).stats([], day=day) is None
    assert wechat.requests == []


# --- through the pipeline ----------------------------------------------------------------------------------------

def wechat_channel(tenant, server: WeChatServer) -> Channel:
    with scope(tenant=tenant):
        channel, _ = services.channel_save(
            channel=Channel(tenant=tenant, name="WX", kind="wechat", options={"author": "Editors"}),
            credentials={"appid": server.appid, "appsecret": server.secret}, actor=None)
    return channel


def beats(tenant, capture, *, most: int = 20) -> None:
    """Beat after beat, each finding every open delivery due (the polls' waits have passed), until none is open."""
    for _ in range(most):
        with scopes_disabled():
            waiting = Delivery.objects.filter(tenant=tenant, status__in=Delivery.OPEN)
            if not waiting.exists():
                return
            waiting.update(due_at=timezone.now(), lease_until=None)
        push(tenant, capture)
    raise AssertionError("deliveries still open")


def test_a_worker_killed_while_polling_does_not_publish_the_article_twice(tenant_a, wechat,
                                                                         django_capture_on_commit_callbacks):
    wechat.publish_polls = 3
    wechat_channel(tenant_a, wechat)
    catalog_item(tenant_a, title="Capital in ten minutes", cover=stored(png()))
    push(tenant_a, django_capture_on_commit_callbacks)
    [delivery] = deliveries(tenant_a)
    assert delivery.status == "confirming"
    # The poll comes due; a worker claims it and is killed before it records anything; its lease runs out.
    with scopes_disabled():
        Delivery.objects.filter(pk=delivery.pk).update(due_at=timezone.now(), lease_until=None)
    with scope(tenant=tenant_a):
        assert pipeline._claim(tenant_a, [delivery.pk], timezone.now()) is not None
    with scopes_disabled():
        Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now() - timedelta(seconds=1))

    push(tenant_a, django_capture_on_commit_callbacks)  # the dispatcher takes the row over

    [delivery] = deliveries(tenant_a)
    assert delivery.status == "confirming" and delivery.attempts == 1
    assert len(wechat.requests_to("/cgi-bin/freepublish/submit")) == 1
    assert len(wechat.requests_to("/cgi-bin/freepublish/get")) == 1  # the takeover polled the same job
    assert len(wechat.finish_jobs()) == 1


def test_a_new_version_approved_while_wechat_publishes_the_old_one_replaces_it(tenant_a, wechat,
                                                                             django_capture_on_commit_callbacks):
    wechat.publish_polls = 3
    channel = wechat_channel(tenant_a, wechat)
    item = catalog_item(tenant_a, title="Capital in ten minutes", cover=stored(png()))
    push(tenant_a, django_capture_on_commit_callbacks)
    assert [d.status for d in deliveries(tenant_a)] == ["confirming"]  # WeChat is still publishing version 1

    with scope(tenant=tenant_a):
        item.title = "Capital in ten minutes (2nd ed.)"
        item.save()
        catalog.item_publish_changes(item=item, actor=UserFactory(email="editor@alpha.test"))
    beats(tenant_a, django_capture_on_commit_callbacks)

    assert [(d.version, d.action, d.status) for d in deliveries(tenant_a)] == [
        (1, "publish", "delivered"), (2, "update", "delivered")]
    assert len(wechat.requests_to("/cgi-bin/freepublish/submit")) == 2
    assert [a["article"]["title"] for a in wechat.finish_jobs()] == ["Capital in ten minutes (2nd ed.)"]
    with scopes_disabled():
        publication = Publication.objects.get(channel=channel, item=item)
    assert (publication.version, publication.status) == (2, "live")


def test_archiving_while_wechat_publishes_the_article_withdraws_it(tenant_a, wechat,
                                                                   django_capture_on_commit_callbacks):
    wechat.publish_polls = 3
    channel = wechat_channel(tenant_a, wechat)
    item = catalog_item(tenant_a, title="Capital in ten minutes", cover=stored(png()))
    push(tenant_a, django_capture_on_commit_callbacks)
    assert [d.status for d in deliveries(tenant_a)] == ["confirming"]

    with scope(tenant=tenant_a):
        catalog.item_archive(item=item, actor=UserFactory(email="editor@alpha.test"))
    beats(tenant_a, django_capture_on_commit_callbacks)

    assert [(d.action, d.status) for d in deliveries(tenant_a)] == [("publish", "delivered"),
                                                                     ("withdraw", "delivered")]
    assert wechat.finish_jobs() == []  # off sale: nothing of it stays on the official account
    with scopes_disabled():
        assert Publication.objects.get(channel=channel, item=item).status == "withdrawn"


def test_withdrawing_an_article_already_deleted_on_wechat_counts_as_done(tenant_a, wechat,
                                                                         django_capture_on_commit_callbacks):
    channel = wechat_channel(tenant_a, wechat)
    item = catalog_item(tenant_a, title="Capital", cover=stored(png()))
    beats(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():
        publication = Publication.objects.get(channel=channel, item=item)
    wechat.articles[publication.data["article_id"]]["deleted"] = True  # an editor deleted it on mp.weixin.qq.com
    with scope(tenant=tenant_a):
        catalog.item_archive(item=item, actor=UserFactory(email="editor@alpha.test"))
    beats(tenant_a, django_capture_on_commit_callbacks)
    withdrawal = deliveries(tenant_a)[-1]
    publication.refresh_from_db()
    assert (withdrawal.action, withdrawal.status, publication.status) == ("withdraw", "delivered", "withdrawn")
    assert withdrawal.message == "The article was already gone from WeChat."


def test_polls_that_keep_failing_park_the_delivery_and_a_retry_polls_the_same_job(
        tenant_a, wechat, settings, django_capture_on_commit_callbacks):
    settings.DISTRIBUTION_MAX_ATTEMPTS = 3
    wechat_channel(tenant_a, wechat)
    catalog_item(tenant_a, title="Capital in ten minutes", cover=stored(png()))
    push(tenant_a, django_capture_on_commit_callbacks)
    wechat.fail(-1, times=2, path="/cgi-bin/freepublish/get")  # WeChat is busy the next two times we ask

    beats(tenant_a, django_capture_on_commit_callbacks)

    [delivery] = deliveries(tenant_a)
    assert (delivery.status, delivery.attempts, delivery.error_code) == ("parked", 3, "wechat_-1")
    assert "Gave up after 3 attempts" in delivery.message
    assert len(wechat.requests_to("/cgi-bin/freepublish/get")) == 2
    with scopes_disabled():
        log = list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("number", "outcome"))
    assert log == [(1, "pending"), (2, "transient"), (3, "transient")]

    with scope(tenant=tenant_a), django_capture_on_commit_callbacks(execute=True):
        services.delivery_retry(delivery=delivery, actor=None)
    beats(tenant_a, django_capture_on_commit_callbacks)

    [delivery] = deliveries(tenant_a)
    assert delivery.status == "delivered"
    assert len(wechat.requests_to("/cgi-bin/freepublish/submit")) == 1  # polled again, not submitted again


def test_target_settings_that_are_not_an_object_park_the_pushes_with_the_reason(tenant_a, wechat,
                                                                                django_capture_on_commit_callbacks):
    channel = wechat_channel(tenant_a, wechat)
    with scopes_disabled():  # saved as a list, as the admin took any JSON before it checked
        Channel.objects.filter(pk=channel.pk).update(options=["author", "Editors"])
    with django_capture_on_commit_callbacks(execute=False):  # two pushes, one batch
        catalog_item(tenant_a, title="Capital in ten minutes", cover=stored(png()))
        catalog_item(tenant_a, title="Wealth of nations", cover=stored(png()))
    push(tenant_a, django_capture_on_commit_callbacks)
    rows = deliveries(tenant_a)
    assert [(d.status, d.attempts, d.error_code) for d in rows] == [("parked", 1, "options_invalid")] * 2
    assert "must be a JSON object" in rows[0].message and wechat.requests == []

    with scopes_disabled():
        Channel.objects.filter(pk=channel.pk).update(options={"author": "Editors"})
    with scope(tenant=tenant_a), django_capture_on_commit_callbacks(execute=True):
        for delivery in rows:
            services.delivery_retry(delivery=delivery, actor=None)
    beats(tenant_a, django_capture_on_commit_callbacks)
    assert {d.status for d in deliveries(tenant_a)} == {"delivered"}


# --- a channel changed to another type ---------------------------------------------------------------------------

def test_a_feed_turned_into_a_wechat_account_gets_the_published_items(tenant_a, wechat,
                                                                       django_capture_on_commit_callbacks):
    """The feed's publications end when the channel becomes a WeChat account: "Push every published item" publishes
    the item there, as an article of its own, and nothing is withdrawn from an account that never had it."""
    with scope(tenant=tenant_a):
        channel, _ = services.channel_save(channel=Channel(tenant=tenant_a, name="Ours", kind="feed"),
                                           credentials={}, actor=None)
    item = catalog_item(tenant_a, title="Capital in ten minutes", cover=stored(png()))
    push(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():
        assert Publication.objects.get(channel=channel, item=item).status == "live"  # listed in the feed

    channel.kind, channel.options = "wechat", {"author": "Editors"}
    with scope(tenant=tenant_a):
        services.channel_save(channel=channel, credentials={"appid": wechat.appid, "appsecret": wechat.secret},
                              actor=None)
        with django_capture_on_commit_callbacks(execute=True):
            queued = services.channel_backfill(channel=channel, actor=None)
    beats(tenant_a, django_capture_on_commit_callbacks)

    [article] = wechat.finish_jobs()
    with scopes_disabled():
        publication = Publication.objects.get(channel=channel, item=item)
    [delivery] = deliveries(tenant_a, channel=channel)
    assert queued == 1 and delivery.status == "delivered"
    assert (publication.status, publication.external_id) == ("live", wechat.jobs[article["publish_id"]].article_id)
    assert publication.external_url.startswith("http://mp.weixin.qq.com/")
    assert len(wechat.requests_to("/cgi-bin/freepublish/submit")) == 1
    assert wechat.requests_to("/cgi-bin/freepublish/delete") == []

    with scope(tenant=tenant_a):  # and the next version replaces that article
        ContentItem.objects.filter(pk=item.pk).update(subtitle="Revised")
        catalog.item_publish_changes(item=item, actor=UserFactory(email="editor@alpha.test"))
    beats(tenant_a, django_capture_on_commit_callbacks)
    assert [a["article"]["title"] for a in wechat.finish_jobs()] == ["Capital in ten minutes"]
    assert len(wechat.requests_to("/cgi-bin/freepublish/delete")) == 1


def test_a_wechat_account_turned_into_a_feed_while_wechat_publishes_lists_the_item(tenant_a, wechat,
                                                                                   django_capture_on_commit_callbacks):
    """The article WeChat was still publishing belongs to the old platform: its delivery stops being polled (a feed
    has nothing to poll), and "Push every published item" lists the item in the feed."""
    wechat.publish_polls = 3
    channel = wechat_channel(tenant_a, wechat)
    item = catalog_item(tenant_a, title="Capital in ten minutes", cover=stored(png()))
    push(tenant_a, django_capture_on_commit_callbacks)
    assert [d.status for d in deliveries(tenant_a)] == ["confirming"]

    channel.kind, channel.options = "feed", {}
    with scope(tenant=tenant_a):
        services.channel_save(channel=channel, credentials={}, actor=None)
    [skipped] = deliveries(tenant_a)
    assert skipped.status == "skipped" and "changed to another type" in skipped.message
    with scope(tenant=tenant_a), django_capture_on_commit_callbacks(execute=True):
        assert services.channel_backfill(channel=channel, actor=None) == 1
    beats(tenant_a, django_capture_on_commit_callbacks)

    [delivery] = deliveries(tenant_a)
    with scopes_disabled():
        publication = Publication.objects.get(channel=channel, item=item)
    assert delivery.status == "delivered" and publication.status == "live"
    assert len(wechat.requests_to("/cgi-bin/freepublish/get")) == 0  # the feed never polled WeChat
    assert "Capital in ten minutes" in host_client("alpha.test").get(f"/feeds/{channel.code}.rss").content.decode()


# --- what WeChat accepted is never published twice ----------------------------------------------------------------

def test_a_cache_blip_right_after_wechat_accepted_the_article_keeps_its_publish_id(tenant_a, wechat,
                                                                                   django_capture_on_commit_callbacks):
    """Once ``freepublish/submit`` accepted the article, WeChat publishes it: a cache that does not answer when the
    consumed draft is forgotten must not turn that into a failure (the retry would submit the consumed draft, park
    on 40007, and the article would be live on the account unrecorded)."""
    from unittest import mock

    from django.core.cache import cache

    channel = wechat_channel(tenant_a, wechat)
    real_delete, failed = cache.delete, []

    def delete_once_unreachable(key, *args, **kwargs):
        if key.startswith("wechat:step:") and not failed:
            failed.append(key)
            raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")
        return real_delete(key, *args, **kwargs)

    with mock.patch.object(cache, "delete", side_effect=delete_once_unreachable):
        item = catalog_item(tenant_a, title="Capital in ten minutes", cover=stored(png()))
        push(tenant_a, django_capture_on_commit_callbacks)
    beats(tenant_a, django_capture_on_commit_callbacks)

    live = wechat.finish_jobs()
    with scopes_disabled():
        delivery = Delivery.objects.get(channel=channel, item=item)
        publication = Publication.objects.filter(channel=channel, item=item, status="live").first()
    assert failed, "the cache was never asked to forget the draft"
    assert len(live) == 1
    assert (delivery.status, delivery.error_code) == ("delivered", ""), (delivery.status, delivery.message)
    assert publication is not None and publication.external_id == wechat.jobs[live[0]["publish_id"]].article_id


def test_a_delivery_tried_again_after_its_submission_went_unrecorded_polls_it(wechat):
    """The worker that submitted the article could not record it (its database dropped): the retry of the same
    delivery finds the submission and polls it instead of publishing the article a second time."""
    connector = make_connector(wechat)
    first = connector.publish(make_post(), delivery_id="dlv_1_7")  # ... and the worker's answer is lost

    again = connector.publish(make_post(), delivery_id="dlv_1_7")

    assert again.pending and again.data == first.data
    assert len(wechat.requests_to("/cgi-bin/freepublish/submit")) == 1
    assert len(wechat.requests_to("/cgi-bin/draft/add")) == 1
    assert not connector.confirm(again).pending and len(wechat.finish_jobs()) == 1


def test_a_delivery_whose_submission_failed_is_published_anew(settings):
    """WeChat's job for the submission ended in failure (review refused it): a staff retry publishes the article
    again, with a new draft, instead of polling the failed job forever."""
    with WeChatServer(publish_polls=0, publish_outcome=4) as wechat:
        settings.WECHAT_API_BASE = wechat.url
        connector = make_connector(wechat)
        failed = connector.publish(make_post(), delivery_id="dlv_1_8")
        with pytest.raises(PermanentError):
            connector.confirm(failed)
        wechat.publish_outcome = 0

        again = connector.publish(make_post(), delivery_id="dlv_1_8")

        assert again.data["publish_id"] != failed.data["publish_id"]
        assert len(wechat.requests_to("/cgi-bin/freepublish/submit")) == 2
        assert len(wechat.requests_to("/cgi-bin/draft/add")) == 2
        assert not connector.confirm(again).pending
