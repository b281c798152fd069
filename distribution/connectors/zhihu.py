"""Zhihu: no open publishing API, so a delivery produces an export package that staff publish by hand.

The pipeline settles a delivery for a ``manual`` connector as "waiting to be published by hand"; the admin offers
the package (``export_package``) and a "mark as published" form, whose URL ``zhihu_url_check`` validates. Until
then nothing is recorded as live, and the article's links carry the channel's tracking code, so the visits and
orders it brings are counted once it is up.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from html import escape
from urllib.parse import urlsplit

from .base import Connector, Post, PublicationState, Receipt

ZHIHU_HOSTS = ("zhuanlan.zhihu.com", "www.zhihu.com")

README = """\
How to publish this article on Zhihu
====================================

1. Open https://zhuanlan.zhihu.com/write (write an article) in the storefront's Zhihu account.
2. Paste the text of article.md into the editor (Zhihu offers to convert pasted Markdown), or open article.html in
   a browser and copy its content. Keep the links as they are: they carry the channel's tracking code.
3. Upload the cover from assets/ as the article's title image.
4. Publish, copy the article's address (https://zhuanlan.zhihu.com/p/...), come back to the delivery in Zhiku and
   use "Mark as published" with that address. Only then are the visits and orders it brings counted.

如何在知乎发布这篇文章
======================

1. 用店铺的知乎账号打开 https://zhuanlan.zhihu.com/write（写文章）。
2. 将 article.md 的文字粘贴到编辑器中（知乎会提示转换粘贴的 Markdown），或在浏览器中打开 article.html 后复制内容。
   请保留文中的链接：链接带有渠道追踪码。
3. 将 assets/ 中的封面上传为文章题图。
4. 发布后复制文章地址（https://zhuanlan.zhihu.com/p/...），回到 Zhiku 中的这条推送，点击“标记为已发布”并填入该地址。
   这样带来的访问和订单才会被统计。
"""


def zhihu_url_check(url: str) -> None:
    """Accept only the address of a Zhihu article or answer: https on zhuanlan.zhihu.com or www.zhihu.com."""
    parts = urlsplit((url or "").strip())
    if parts.scheme != "https" or parts.hostname not in ZHIHU_HOSTS or parts.username or parts.port:
        raise ValueError(f"Enter the address of the article on Zhihu (https://zhuanlan.zhihu.com/p/... or "
                         f"https://www.zhihu.com/...), not {url!r}.")
    if parts.path in ("", "/"):
        raise ValueError("Enter the address of the article itself, not Zhihu's home page.")


def _cover_name(post: Post) -> str:
    if post.cover is None:
        return ""
    return posixpath.basename(post.cover.name.removeprefix("private:")) or "cover"


def article_html(post: Post, cover: str = "") -> str:
    """A complete HTML document for the article, its cover referenced from ``assets/``."""
    title = escape(post.title)
    image = f'<p><img src="assets/{escape(cover)}" alt="{title}"></p>\n' if cover else ""
    return (f'<!DOCTYPE html>\n<html lang="{escape(post.language or "zh-hans")}">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{title}</title>\n</head>\n<body>\n<article>\n<h1>{title}</h1>\n{image}{post.html}\n</article>\n"
            "</body>\n</html>\n")


class ZhihuConnector(Connector):
    """Zhihu articles, published by hand from an export package (Markdown, HTML and the cover)."""

    kind = "zhihu"
    pushes = False
    manual = True

    def export_package(self, post: Post) -> bytes:
        """A ZIP with ``article.md``, ``article.html``, ``assets/<cover>`` and ``README.txt``."""
        cover = _cover_name(post)
        cover_bytes = post.cover.read() if post.cover else b""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
            package.writestr("article.md", f"# {post.title}\n\n{post.markdown}")
            package.writestr("article.html", article_html(post, cover if cover_bytes else ""))
            if cover_bytes:
                package.writestr(f"assets/{cover}", cover_bytes)
            package.writestr("README.txt", README)
        return buffer.getvalue()

    def verify(self) -> str:
        return "Nothing to verify: Zhihu articles are published by hand from the export package."

    def publish(self, post: Post, *, delivery_id: str) -> Receipt:
        return Receipt(pending=True, data={"manual": True},
                       note="Export package ready: publish it on Zhihu by hand, then mark it as published.")

    def update(self, post: Post, current: PublicationState, *, delivery_id: str) -> Receipt:
        return Receipt(pending=True, data={"manual": True}, external_id=current.external_id,
                       external_url=current.external_url,
                       note="A new version is ready: edit the article on Zhihu by hand from the export package, "
                            "then mark it as published.")

    def withdraw(self, current: PublicationState, *, delivery_id: str) -> Receipt:
        where = f" ({current.external_url})" if current.external_url else ""
        return Receipt(external_id=current.external_id, external_url=current.external_url,
                       note=f"Remove the article from Zhihu by hand{where}, then mark this delivery as done.")
