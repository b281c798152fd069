"""Rich text and search text.

Descriptions, article bodies and lesson texts are written in Markdown (which admits HTML) and stored twice: as
written, and rendered through nh3, a maintained sanitiser, so storefront pages print only safe markup.

Search text is the item's words in one lower-cased string in which every run of Chinese, Japanese or Korean
characters is also spelled out as overlapping character pairs ("数据科学" -> "数据 据科 科学"). Those scripts
put no spaces between words, so without the pairs PostgreSQL's ``simple`` parser (and any substring search) would
see one long token; with them, "数据" and "科学" each find the title, as Chinese search engines' bigram indexes do.
Full-width letters and digits, which Chinese input methods type in full-width mode ("Ｐｙｔｈｏｎ３"), are folded
to the usual ones first (NFKC), in the text and in queries alike.
"""

from __future__ import annotations

import re
import threading
import unicodedata

import markdown
import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "em", "figcaption", "figure", "h2", "h3", "h4", "hr", "i", "img",
    "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"},
                      "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan", "scope"}, "abbr": {"title"}}

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+", re.UNICODE)
_CJK_RUN = re.compile(rf"^[{_CJK}]+$")


_local = threading.local()


def _markdown() -> markdown.Markdown:
    # Building a Markdown instance costs more than converting a page; instances are not thread-safe, so keep one
    # per thread and reset it between documents.
    md = getattr(_local, "md", None)
    if md is None:
        md = _local.md = markdown.Markdown(extensions=["extra", "sane_lists"], output_format="html")
    return md.reset()


def render_rich_text(source: str) -> str:
    if not source.strip():
        return ""
    html = _markdown().convert(source)
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, link_rel="noopener nofollow ugc",
                     url_schemes={"http", "https", "mailto"})


def plain_text(html: str) -> str:
    return re.sub(r"\s+", " ", nh3.clean(html, tags=set())).strip()


def search_tokens(text: str) -> list[str]:
    """Words of ``text`` as the search index sees them: NFKC-folded and lower-cased; CJK runs as character pairs."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(unicodedata.normalize("NFKC", text).lower()):
        token = match.group()
        if _CJK_RUN.match(token) and len(token) > 1:
            tokens.extend(token[i:i + 2] for i in range(len(token) - 1))
        else:
            tokens.append(token)
    return tokens


def search_document(*parts: str) -> str:
    return " ".join(search_tokens(" ".join(p for p in parts if p)))
