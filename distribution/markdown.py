"""HTML (the sanitised subset ``catalog.text.render_rich_text`` produces) to CommonMark, for export packages.

The HTML is parsed into a small tree first and rendered bottom-up, because Markdown containers (quotes, list items)
prefix or indent every line of what they hold, which is only known once the children are rendered. Markdown has no
underline, subscript or superscript: those stay inline HTML, which CommonMark passes through. Text is escaped where
a character would otherwise start Markdown syntax; anything else, Chinese text included, is left as it is.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_VOID = {"br", "hr", "img"}
_BLOCK = {"p", "h2", "h3", "h4", "ul", "ol", "li", "blockquote", "pre", "hr", "table", "thead", "tbody", "tr", "td",
          "th", "figure", "figcaption"}
_INLINE_MARKS = {"strong": "**", "b": "**", "em": "*", "i": "*", "s": "~~"}
_INLINE_HTML = {"u", "sub", "sup"}
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")  # not \s: U+3000, the ideographic space, is text in Chinese
_ESCAPE = re.compile(r"([\\`*_\[\]<])")
_LINE_START = re.compile(r"^( *)([#>+=~-])", re.MULTILINE)  # headings, quotes, bullets, setext underlines, ~~~ fences
_ORDERED_START = re.compile(r"^( *\d+)([.)])", re.MULTILINE)
_ENTITY = re.compile(r"&(?=#?\w+;)")


class _Node:
    __slots__ = ("tag", "attrs", "children")

    def __init__(self, tag: str, attrs: dict):
        self.tag, self.attrs, self.children = tag, attrs, []


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = _Node("", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def _text(node) -> str:
    return node if isinstance(node, str) else "".join(_text(child) for child in node.children)


def _wrap(inner: str, mark: str) -> str:
    # CommonMark only sees emphasis whose marks touch the text, so surrounding spaces move outside them.
    core = inner.strip()
    if not core:
        return inner
    lead, trail = inner[: len(inner) - len(inner.lstrip())], inner[len(inner.rstrip()):]
    return f"{lead}{mark}{core}{mark}{trail}"


def _destination(url: str) -> str:
    return f"<{url}>" if re.search(r"[\s()<>]", url) else url


def _title(attrs: dict) -> str:
    title = attrs.get("title", "")
    return ' "' + title.replace('"', '\\"') + '"' if title else ""


def _inline(children) -> str:
    out = []
    for child in children:
        if isinstance(child, str):
            out.append(_ENTITY.sub("\\&", _ESCAPE.sub(r"\\\1", _HTML_SPACE.sub(" ", child))))
            continue
        tag, attrs = child.tag, child.attrs
        if tag in _INLINE_MARKS:
            out.append(_wrap(_inline(child.children), _INLINE_MARKS[tag]))
        elif tag in _INLINE_HTML:
            out.append(f"<{tag}>{_inline(child.children)}</{tag}>")
        elif tag == "code":
            code = _HTML_SPACE.sub(" ", _text(child))
            fence = "`" * (max((len(run) for run in re.findall(r"`+", code)), default=0) + 1)
            pad = " " if code.startswith("`") or code.endswith("`") else ""
            out.append(f"{fence}{pad}{code}{pad}{fence}")
        elif tag == "a":
            label, href = _inline(child.children).strip(), attrs.get("href", "")
            if href and label:
                out.append(f"[{label}]({_destination(href)}{_title(attrs)})")
            else:
                out.append(f"<{href}>" if href else label)
        elif tag == "img":
            alt = _ESCAPE.sub(r"\\\1", attrs.get("alt", ""))
            out.append(f"![{alt}]({_destination(attrs.get('src', ''))}{_title(attrs)})")
        elif tag == "br":
            out.append("\\\n")
        elif tag == "abbr" and attrs.get("title"):
            out.append(_inline(child.children) + " (" + _ESCAPE.sub(r"\\\1", attrs["title"]) + ")")
        else:
            out.append(_inline(child.children))
    return "".join(out)


def _paragraph(children) -> str:
    text = re.sub(r"\n +", "\n", _inline(children).strip())
    return _ORDERED_START.sub(r"\1\\\2", _LINE_START.sub(r"\1\\\2", text))


def _prefix(text: str, first: str, rest: str) -> str:
    lines = text.split("\n")
    return "\n".join([first + lines[0]] + [(rest + line) if line else line for line in lines[1:]])


def _list(node: _Node) -> str:
    items = [child for child in node.children if not isinstance(child, str) and child.tag == "li"]
    rendered = []
    for number, item in enumerate(items, 1):
        marker = f"{number}. " if node.tag == "ol" else "- "
        rendered.append(_prefix(_blocks(item.children, tight=True), marker, " " * len(marker)))
    return "\n".join(rendered)


def _table(node: _Node) -> str:
    def rows(n):
        for child in n.children:
            if not isinstance(child, str):
                yield from ([child] if child.tag == "tr" else rows(child))

    grid = [[_paragraph(cell.children).replace("\\\n", "<br>").replace("\n", " ").replace("|", "\\|") or " "
             for cell in row.children if not isinstance(cell, str) and cell.tag in ("td", "th")] for row in rows(node)]
    grid = [row for row in grid if row]
    if not grid:
        return ""
    width = max(len(row) for row in grid)
    grid = [row + [" "] * (width - len(row)) for row in grid]
    lines = [grid[0], ["---"] * width, *grid[1:]]
    return "\n".join("| " + " | ".join(row) + " |" for row in lines)


def _block(node: _Node) -> str:
    tag = node.tag
    if tag in ("h2", "h3", "h4"):
        return "#" * int(tag[1]) + " " + _inline(node.children).strip().replace("\\\n", " ")
    if tag == "blockquote":
        return "\n".join(f"> {line}" if line else ">" for line in _blocks(node.children).split("\n"))
    if tag in ("ul", "ol"):
        return _list(node)
    if tag == "pre":
        code = _text(node).strip("\n")
        fence = "`" * max(3, max((len(run) + 1 for run in re.findall(r"`{3,}", code)), default=0))
        return f"{fence}\n{code}\n{fence}"
    if tag == "hr":
        return "---"
    if tag == "table":
        return _table(node)
    if tag == "figcaption":
        caption = _paragraph(node.children)
        return _wrap(caption, "*") if caption else ""
    if tag == "p":
        return _paragraph(node.children)
    return _blocks(node.children)  # figure, li outside a list, stray table parts


def _blocks(children, *, tight: bool = False) -> str:
    """Render a run of block and inline children; inline runs become paragraphs. ``tight``: a list item's nested
    list follows its text on the next line, which keeps the outer list tight."""
    parts: list[tuple[str, str]] = []
    run: list = []

    def flush():
        text = _paragraph(run)
        if text:
            parts.append(("p", text))
        run.clear()

    for child in children:
        if isinstance(child, str) or child.tag not in _BLOCK:
            run.append(child)
            continue
        flush()
        rendered = _block(child)
        if rendered.strip():
            parts.append((child.tag, rendered))
    flush()
    out = ""
    for i, (tag, text) in enumerate(parts):
        if i:
            out += "\n" if tight and tag in ("ul", "ol") else "\n\n"
        out += text
    return out


def html_to_markdown(html: str) -> str:
    builder = _TreeBuilder()
    builder.feed(html or "")
    builder.close()
    text = _blocks(builder.root.children).strip()
    return text + "\n" if text else ""
