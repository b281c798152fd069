"""Bulk import of another platform's course export (CSV) into a storefront's catalog, and export in our columns.

An import reads the file as it is (any of the usual delimiters; UTF-8 with or without a byte-order mark, or GBK as
Chinese platforms export it), maps its columns to our fields (suggested from the header names and remembered per
tenant and header set in ``ImportMapping``), converts every cell (levels, booleans, prices with currency symbols,
durations, ISO timestamps) and plans each row as a create, an update or an error with all of its reasons.

The dry run stops after planning and writes nothing. The run plans the same way and then writes the good rows, each
inside its own savepoint, so a row that fails half-way leaves neither its item nor the categories it created behind.
Everything the plan needs from the database is loaded up front in a handful of queries, which is what lets thousands
of rows import in seconds.

Imported items are drafts: they go through review like any other item before they are on sale.
"""

from __future__ import annotations

import codecs
import copy
import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import IO, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from marketplace.db import bulk_set
from marketplace.errors import ApplicationError
from marketplace.money import CURRENCY_EXPONENTS, charge_step, format_money, major_units
from marketplace.services import audit_log_write

from .models import Category, ContentItem, ImportMapping, Level, Tag
from .services import catalog_changed, item_publish_changes, item_refresh_derived

Kind = ContentItem.Kind
Progress = Callable[[int, int], None]

# Our fields, in the order the mapping form and the export show them. "currency" is not stored: a currency column
# only confirms that the file's prices are in the storefront's currency.
FIELDS: dict[str, Any] = {
    "external_id": gettext_lazy("ID on the previous platform"),
    "title": gettext_lazy("Title"),
    "subtitle": gettext_lazy("Subtitle"),
    "slug": gettext_lazy("Slug"),
    "kind": gettext_lazy("Kind"),
    "language": gettext_lazy("Language"),
    "level": gettext_lazy("Level"),
    "categories": gettext_lazy("Categories"),
    "tags": gettext_lazy("Tags"),
    "price": gettext_lazy("Price"),
    "currency": gettext_lazy("Currency (checked, not stored)"),
    "duration_minutes": gettext_lazy("Duration (minutes)"),
    "is_featured": gettext_lazy("Featured"),
    "starts_at": gettext_lazy("Starts at"),
    "join_url": gettext_lazy("Join link"),
    "description": gettext_lazy("Description"),
}
# Several source columns may feed these (a platform's "Category" and "Subcategory"); any other field takes one.
MULTI_VALUE_FIELDS = frozenset({"categories", "tags"})
EXPORT_COLUMNS = list(FIELDS)
# The extra column of the bad-rows file; left out of the header key so a fixed file maps like the original.
ERRORS_COLUMN = "import errors"
PREVIEW_ROWS = 200

HEADER_SYNONYMS: dict[str, list[str]] = {
    "external_id": ["external id", "id", "course id", "product id", "item id", "sku", "课程id", "商品id", "编号",
                    "课程编号", "商品编号", "ID on the previous platform"],
    "title": ["title", "name", "course name", "course title", "product name", "item name", "课程名称", "课程名",
              "课程标题", "名称", "标题", "商品名称", "商品名", "专栏名称"],
    "subtitle": ["subtitle", "sub title", "tagline", "summary", "short description", "副标题", "简介", "摘要",
                 "一句话简介"],
    "slug": ["slug", "url slug", "permalink", "别名", "链接标识"],
    "kind": ["kind", "type", "course type", "content type", "format", "类型", "课程类型", "内容类型", "形式"],
    "language": ["language", "lang", "locale", "语言", "授课语言"],
    "level": ["level", "difficulty", "course level", "难度", "级别", "等级", "课程难度"],
    "categories": ["categories", "category", "subcategory", "subject", "topic", "分类", "类目", "栏目", "课程分类",
                   "子分类"],
    "tags": ["tags", "tag", "keywords", "标签", "关键词", "关键字"],
    "price": ["price", "sale price", "current price", "amount", "价格", "售价", "定价", "现价", "金额", "课程价格"],
    "currency": ["currency", "币种", "货币"],
    "duration_minutes": ["duration", "duration minutes", "duration (minutes)", "length", "minutes", "时长",
                         "课程时长", "总时长", "时长（分钟）"],
    "is_featured": ["featured", "is featured", "recommended", "推荐", "精选", "是否推荐", "首页推荐"],
    "starts_at": ["starts at", "start time", "start date", "start", "date", "开始时间", "直播时间", "开课时间",
                  "开播时间"],
    "join_url": ["join url", "join link", "live url", "meeting url", "link", "url", "直播链接", "上课链接", "链接"],
    "description": ["description", "details", "course description", "introduction", "课程介绍", "介绍", "详情",
                    "描述", "课程描述", "课程详情"],
}

KIND_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(["course", "courses", "课程", "系列课", "系列课程", "训练营"], Kind.COURSE),
    **dict.fromkeys(["article", "text", "post", "图文", "文章"], Kind.ARTICLE),
    **dict.fromkeys(["audio", "podcast", "音频", "音频课"], Kind.AUDIO),
    **dict.fromkeys(["video", "视频", "视频课"], Kind.VIDEO),
    **dict.fromkeys(["ebook", "book", "pdf", "电子书"], Kind.EBOOK),
    **dict.fromkeys(["live", "livesession", "webinar", "直播", "直播课"], Kind.LIVE),
}
LEVEL_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(["beginner", "basic", "introductory", "elementary", "novice", "easy", "alllevels", "all",
                     "入门", "初级", "零基础", "全部", "不限", "所有级别", "1"], Level.BEGINNER),
    **dict.fromkeys(["intermediate", "medium", "middle", "中级", "进阶", "2"], Level.INTERMEDIATE),
    **dict.fromkeys(["advanced", "expert", "hard", "高级", "专家", "精通", "3"], Level.ADVANCED),
}
LANGUAGE_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(["en", "english", "enus", "engb", "英文", "英语"], "en"),
    **dict.fromkeys(["zh", "zhcn", "zhhans", "zhsg", "chinese", "simplifiedchinese", "chinesesimplified", "中文",
                     "简体中文", "简体", "汉语", "普通话", "mandarin"], "zh-hans"),
}
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "是", "对", "on"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "否", "不", "off"})
FREE_WORDS = frozenset({"free", "免费", "gratis"})
_DOLLARS = frozenset({"USD", "HKD", "TWD", "SGD", "AUD", "CAD"})
# Longest first, so "hk$" is read before "$". "¥" is both the yuan and the yen.
CURRENCY_MARKERS: list[tuple[str, frozenset[str]]] = [
    ("us$", frozenset({"USD"})), ("hk$", frozenset({"HKD"})), ("nt$", frozenset({"TWD"})),
    ("s$", frozenset({"SGD"})), ("a$", frozenset({"AUD"})), ("au$", frozenset({"AUD"})),
    ("c$", frozenset({"CAD"})), ("ca$", frozenset({"CAD"})), ("$", _DOLLARS),
    ("¥", frozenset({"CNY", "JPY"})), ("元", frozenset({"CNY"})), ("rmb", frozenset({"CNY"})),
    ("yuan", frozenset({"CNY"})), ("円", frozenset({"JPY"})), ("yen", frozenset({"JPY"})),
    ("€", frozenset({"EUR"})), ("£", frozenset({"GBP"})), ("₩", frozenset({"KRW"})), ("₫", frozenset({"VND"})),
]
_LIST_SEPARATORS = re.compile(r"[,;|、，；｜\n]")
# Our own export separates names by "|" alone (the admin refuses it in category and tag names), so that names such
# as "数据、统计" or "Python, Data" read back whole.
_EXPORT_LIST_SEPARATOR = re.compile(r"\|")
_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+(?:\.\d*)?|\.\d+")
_DURATION_PART = re.compile(
    r"(\d+(?:\.\d+)?)\s*(hours|hour|hrs|hr|h|小时|时|minutes|minute|mins|min|m|分钟|分|seconds|second|secs|sec|s|秒)")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class CellError(ValueError):
    """A cell that cannot be converted; the message tells the person fixing the file what is wrong."""


# --- reading the file ----------------------------------------------------------------------------------------------

@dataclass
class CsvTable:
    """A parsed file: its header row and its data rows as ``{header: cell}`` (extra cells under the key None)."""

    headers: list[str]
    rows: list[dict[str | None, Any]]
    delimiter: str = ","
    encoding: str = "utf-8"


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:  # cut short, or not UTF-16 after all
            raise ApplicationError(_("The file is not text in UTF-8 or GBK: is it really a CSV file?"),
                                   code="not_csv") from exc
    marked = data.startswith(codecs.BOM_UTF8)
    body = data[len(codecs.BOM_UTF8):] if marked else data
    try:
        return body.decode("utf-8"), "utf-8-sig" if marked else "utf-8"
    except UnicodeDecodeError as exc:
        bad = exc.start
    # A UTF-8 file with a stray byte (a Latin-1 "é" pasted from another tool) would also decode as GB18030, into
    # mojibake that the preview calls good. When the file says it is UTF-8 (a byte-order mark), or most of its other
    # characters are valid UTF-8, it is UTF-8: refuse it, naming the line to fix, rather than guess.
    text = body.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd")
    if marked or len(text) - len(text.encode("ascii", errors="ignore")) - invalid > invalid:
        raise ApplicationError(
            _("Line %(line)s of the file is not valid UTF-8 (byte 0x%(byte)02X): correct that character, or save "
              "the file again as UTF-8.") % {"line": body.count(b"\n", 0, bad) + 1, "byte": body[bad]},
            code="not_utf8")
    try:
        # GB18030 is a superset of GBK (and GB2312), which Chinese platforms and Excel on Chinese Windows write.
        return data.decode("gb18030"), "gbk"
    except UnicodeDecodeError as exc:
        raise ApplicationError(_("The file is not text in UTF-8 or GBK: is it really a CSV file?"),
                               code="not_csv") from exc


def import_file_read(*, data: bytes | str) -> CsvTable:
    """Parse an uploaded CSV file: detect the encoding and the delimiter, read the header row and the data rows.

    Raises ApplicationError (code ``not_csv``, ``not_utf8`` or ``empty``) when the file is not a CSV file with a
    header row, or is UTF-8 but for a byte.
    """
    text, encoding = (data, "utf-8") if isinstance(data, str) else _decode(data)
    text = text.removeprefix("\ufeff").lstrip("\r\n")
    if "\x00" in text:
        raise ApplicationError(_("The file contains binary data: is it really a CSV file?"), code="not_csv")
    if not text.strip():
        raise ApplicationError(_("The file is empty."), code="empty")
    first_line = text.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    # The sniffer can be misled by punctuation in long descriptions; the header row has the final say.
    if first_line.count(delimiter) == 0:
        delimiter = max(",;\t|", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        records = list(reader)
    except csv.Error as exc:
        raise ApplicationError(_("The file could not be read as CSV: %(error)s") % {"error": exc},
                               code="not_csv") from exc
    headers = _unique_headers(records[0])
    if not any(headers):
        raise ApplicationError(_("The first row should name the columns, but it is empty."), code="empty")
    rows: list[dict[str | None, Any]] = []
    width = len(headers)
    for record in records[1:]:
        row: dict[str | None, Any] = dict(zip(headers, record + [""] * (width - len(record)), strict=False))
        if len(record) > width:
            row[None] = record[width:]
        rows.append(row)
    return CsvTable(headers=headers, rows=rows, delimiter=delimiter, encoding=encoding)


def _unique_headers(raw: list[str]) -> list[str]:
    headers: list[str] = []
    for index, header in enumerate(raw, start=1):
        name = header.strip() or _("column %(number)s") % {"number": index}
        candidate, n = name, 2
        while candidate in headers:
            candidate, n = f"{name} ({n})", n + 1
        headers.append(candidate)
    return headers


# --- mapping columns to fields -------------------------------------------------------------------------------------

def _key(value: str) -> str:
    """Compare header names and codes ignoring case, width, spaces and punctuation."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", value).casefold())


_SYNONYM_INDEX = {_key(name): target for target, names in HEADER_SYNONYMS.items() for name in [target, *names]}


def import_mapping_key(headers: Iterable[str]) -> str:
    """The key a saved mapping is found by: sha256 of the sorted, lower-cased header names."""
    names = sorted(h.strip().lower() for h in headers if h.strip().lower() != ERRORS_COLUMN)
    return hashlib.sha256(json.dumps(names, ensure_ascii=False).encode()).hexdigest()


def _is_own_export(headers: Iterable[str]) -> bool:
    """Whether the header row is our export's (``EXPORT_COLUMNS``), also as the bad-rows file gives it back."""
    return sorted(h for h in headers if h != ERRORS_COLUMN) == sorted(EXPORT_COLUMNS)


def import_mapping_suggest(*, headers: Sequence[str]) -> dict[str, str]:
    """Guess ``{header: our field or ""}`` from the header names (English and Chinese synonyms, any case)."""
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for header in headers:
        target = _SYNONYM_INDEX.get(_key(header), "")
        if target and target in taken and target not in MULTI_VALUE_FIELDS:
            target = ""
        mapping[header] = target
        taken.add(target)
    return mapping


@dataclass
class ImportOptions:
    """What to do with categories the storefront does not have yet, and with rows matching an existing item."""

    create_missing_categories: bool = False
    update_existing: bool = False

    @classmethod
    def of(cls, value: ImportOptions | Mapping[str, Any] | None) -> ImportOptions:
        if isinstance(value, ImportOptions):
            return value
        value = value or {}
        return cls(create_missing_categories=bool(value.get("create_missing_categories")),
                   update_existing=bool(value.get("update_existing")))

    def as_dict(self) -> dict[str, bool]:
        return {"create_missing_categories": self.create_missing_categories, "update_existing": self.update_existing}


@dataclass
class MappingChoice:
    columns: dict[str, str]
    options: ImportOptions
    saved: bool


def import_mapping_get(*, tenant, headers: Sequence[str]) -> MappingChoice:
    """The tenant's saved mapping for this header set, or a suggested one (``saved`` says which)."""
    saved = ImportMapping.objects.filter(tenant=tenant, headers_key=import_mapping_key(headers)).first()
    if saved is None:
        return MappingChoice(columns=import_mapping_suggest(headers=headers), options=ImportOptions(), saved=False)
    columns = {h: saved.columns.get(h, "") if saved.columns.get(h, "") in FIELDS else "" for h in headers}
    return MappingChoice(columns=columns, options=ImportOptions.of(saved.options), saved=True)


def import_mapping_save(*, tenant, headers: Sequence[str], columns: Mapping[str, str],
                        options: ImportOptions | Mapping[str, Any] | None = None, name: str = "") -> ImportMapping:
    """Remember the mapping (and options) for this header set, so the next file in this format maps itself."""
    mapping_check(headers=headers, mapping=columns)
    clean = {h: columns.get(h, "") for h in headers}
    mapping, _created = ImportMapping.objects.update_or_create(
        tenant=tenant, headers_key=import_mapping_key(headers),
        defaults={"name": (name or ", ".join(headers))[:100], "columns": clean,
                  "options": ImportOptions.of(options).as_dict()},
    )
    return mapping


def mapping_check(*, headers: Sequence[str], mapping: Mapping[str, str]) -> dict[str, list[str]]:
    """Validate a mapping and return it as ``{our field: [source headers]}``; ApplicationError says what is wrong."""
    columns: dict[str, list[str]] = {}
    for header in headers:
        target = mapping.get(header) or ""
        if not target:
            continue
        if target not in FIELDS:
            raise ApplicationError(_("“%(field)s” is not a field an import can fill.") % {"field": target},
                                   code="unknown_field")
        columns.setdefault(target, []).append(header)
    for target, sources in columns.items():
        if len(sources) > 1 and target not in MULTI_VALUE_FIELDS:
            raise ApplicationError(
                _("Columns %(columns)s are all mapped to %(field)s; map only one of them.")
                % {"columns": ", ".join(f"“{s}”" for s in sources), "field": FIELDS[target]},
                code="field_mapped_twice")
    if "title" not in columns:
        raise ApplicationError(_("Map one column to Title: every item needs a title."), code="title_not_mapped")
    return columns


# --- converting cells ----------------------------------------------------------------------------------------------

def _fold(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().casefold()


def _title_key(title: str) -> str:
    """Compare titles ignoring case, width and spacing, but not punctuation ("C++" is not "C#")."""
    return " ".join(_fold(title).split())


def convert_kind(value: str) -> str:
    kind = KIND_SYNONYMS.get(_key(value)) or (_key(value) if _key(value) in Kind.values else None)
    if kind is None:
        raise CellError(_("Unknown kind “%(value)s” (use course, article, audio, video, ebook or live).")
                        % {"value": value})
    return kind


def convert_language(value: str) -> str:
    supported = {code: code for code, _name in settings.LANGUAGES}
    supported.update({_key(code): code for code, _name in settings.LANGUAGES})
    supported.update({_key(str(name)): code for code, name in settings.LANGUAGES})
    language = LANGUAGE_SYNONYMS.get(_key(value)) or supported.get(_key(value))
    if language not in dict(settings.LANGUAGES):
        raise CellError(_("Unsupported language “%(value)s”.") % {"value": value})
    return language


def convert_level(value: str) -> str:
    level = LEVEL_SYNONYMS.get(_key(value))
    if level is None:
        raise CellError(_("Unknown level “%(value)s” (use beginner, intermediate or advanced).") % {"value": value})
    return level


def convert_bool(value: str) -> bool:
    folded = _fold(value)
    if folded in TRUE_WORDS:
        return True
    if folded in FALSE_WORDS:
        return False
    raise CellError(_("“%(value)s” is not yes or no.") % {"value": value})


def _currency_marker(marker: str, currency: str) -> None:
    """Reject a currency symbol or code that is not the storefront's currency."""
    if not marker:
        return
    for symbol, codes in CURRENCY_MARKERS:
        if marker == symbol:
            if currency not in codes:
                raise CellError(_("The price is in another currency (“%(marker)s”) than the storefront's %(currency)s.")
                                % {"marker": marker, "currency": currency})
            return
    if re.fullmatch(r"[a-z]{3}", marker):
        if marker.upper() != currency:
            raise CellError(_("The price is in %(other)s, but the storefront sells in %(currency)s.")
                            % {"other": marker.upper(), "currency": currency})
        return
    raise CellError(_("“%(marker)s” in the price is not a currency.") % {"marker": marker})


def convert_currency(value: str, *, currency: str) -> str:
    """A currency column only confirms the storefront's currency."""
    _currency_marker(_fold(value).replace(" ", ""), currency)
    return currency


def convert_price(value: str, *, currency: str) -> int:
    """A price as written on a storefront ("¥99", "$1,299.50", "99.00 CNY", "免费") in the currency's minor unit."""
    folded = _fold(value)
    if folded in FREE_WORDS:
        return 0
    numbers = _NUMBER.findall(folded)
    digits = re.findall(r"\d[\d,.]*", folded)
    if len(digits) != 1 or len(numbers) != 1 or numbers[0] != digits[0]:
        raise CellError(_("Price “%(value)s” is not a number.") % {"value": value})
    rest = folded.replace(digits[0], " ", 1)
    negative = "-" in rest or ("(" in rest and ")" in rest)
    _currency_marker(re.sub(r"[\s+\-()]", "", rest), currency)
    if negative:
        raise CellError(_("Price “%(value)s” is negative.") % {"value": value})
    try:
        amount = Decimal(digits[0].replace(",", ""))
    except InvalidOperation as exc:
        raise CellError(_("Price “%(value)s” is not a number.") % {"value": value}) from exc
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    minor = amount.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise CellError(_("Price “%(value)s” has more decimals than %(currency)s allows (%(places)s).")
                        % {"value": value, "currency": currency, "places": exponent})
    if minor > 2_147_483_647:
        raise CellError(_("Price “%(value)s” is too large.") % {"value": value})
    if minor % charge_step(currency):
        raise CellError(_("Price “%(value)s” cannot be charged: %(currency)s goes in steps of %(step)s.")
                        % {"value": value, "currency": currency, "step": format_money(charge_step(currency), currency)})
    return int(minor)


MAX_DURATION_MINUTES = 366 * 24 * 60  # more is a typo, and would not fit the column


def convert_duration(value: str) -> int:
    """Minutes from "90", "1:30", "1:30:00", "1h30m", "90 min", "1.5 hours" or "1小时30分钟"."""
    folded = _fold(value)
    seconds: Decimal
    if re.fullmatch(r"\d+(\.\d+)?", folded):
        seconds = Decimal(folded) * 60
    elif match := re.fullmatch(r"(\d+):([0-5]?\d)(?::([0-5]?\d))?", folded):
        hours, minutes, secs = (int(g or 0) for g in match.groups())
        seconds = Decimal(hours * 3600 + minutes * 60 + secs)
    elif folded and re.fullmatch(rf"(?:{_DURATION_PART.pattern}\s*)+", folded):
        seconds = Decimal(0)
        for number, unit in _DURATION_PART.findall(folded):
            if unit in ("hours", "hour", "hrs", "hr", "h", "小时", "时"):
                seconds += Decimal(number) * 3600
            elif unit in ("seconds", "second", "secs", "sec", "s", "秒"):
                seconds += Decimal(number)
            else:
                seconds += Decimal(number) * 60
    else:
        raise CellError(_("Duration “%(value)s” is not a number of minutes (or 1:30, 1h30m).") % {"value": value})
    if seconds > MAX_DURATION_MINUTES * 60:
        raise CellError(_("Duration “%(value)s” is longer than a year.") % {"value": value})
    return int((seconds / 60).quantize(Decimal(1), rounding=ROUND_HALF_UP))


_SLASH_DATE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})([T ].+)?")
# Other years are typos. Near the ends of what a datetime holds (years 1 and 9999) a time can also leave that range
# once it is shown in another time zone, and then no page listing the item can be rendered.
START_YEARS = range(1900, 3000)


def convert_datetime(value: str, *, time_zone: tzinfo | None = None) -> datetime:
    """An ISO 8601 timestamp in ``START_YEARS``; one without an offset is wall time in ``time_zone`` (the
    storefront's: Chinese platforms export Beijing time without saying so), by default the active one.

    Spreadsheets also write ``2025/3/1``: such a date, alone or followed by a time after ``T`` or a space as in an ISO
    timestamp, is read as the dashed date. Anything else after the day is left to the ISO parser, which refuses it.
    """
    text = value.strip()
    slash_date = _SLASH_DATE.fullmatch(text)
    if slash_date:
        year, month, day, rest = slash_date.groups()
        text = f"{year}-{int(month):02d}-{int(day):02d}{rest or ''}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CellError(_("“%(value)s” is not an ISO 8601 date and time (such as 2025-03-01T19:30+08:00).")
                        % {"value": value}) from exc
    if moment.year not in START_YEARS:
        raise CellError(_("“%(value)s” is not between the years %(first)s and %(last)s.")
                        % {"value": value, "first": START_YEARS.start, "last": START_YEARS.stop - 1})
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, time_zone)
    return moment


def convert_list(value: str, *, own_export: bool = False) -> list[str]:
    """Names separated by , ; | or 、 (half or full width), or by | alone in our own export, without blanks or
    repeats."""
    names: list[str] = []
    seen: set[str] = set()
    for part in (_EXPORT_LIST_SEPARATOR if own_export else _LIST_SEPARATORS).split(value):
        name = " ".join(part.split())
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            names.append(name)
    return names


def convert_slug(value: str) -> str:
    slug = slugify(value, allow_unicode=True)
    if not slug:
        raise CellError(_("Slug “%(value)s” has no letters or digits.") % {"value": value})
    return slug[:200]


_TEXT_FIELDS = frozenset({"external_id", "title", "subtitle", "description", "join_url"})
_CONVERTERS: dict[str, Callable[..., Any]] = {
    "kind": convert_kind, "language": convert_language, "level": convert_level, "slug": convert_slug,
    "is_featured": convert_bool, "duration_minutes": convert_duration,
}


def _unescape(cell: str) -> str:
    # Exports guard cells that a spreadsheet would run as a formula with a leading apostrophe; take it off again.
    if cell.startswith("'") and cell[1:2] and cell[1] in _FORMULA_START:
        return cell[1:]
    return cell


def row_convert(values: Mapping[str | None, Any], columns: Mapping[str, list[str]], *,
                currency: str, time_zone: tzinfo | None = None,
                own_export: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Convert one row's cells to our fields; returns the values given and the reasons for every bad cell.

    An empty cell is "not given": a new item takes the field's default and an updated item keeps its value. Prices
    are in ``currency`` and times without an offset in ``time_zone`` (the storefront's).
    ``own_export`` reads lists as our export writes them (see ``_is_own_export``).
    """
    data: dict[str, Any] = {}
    errors: list[str] = []
    for target, headers in columns.items():
        cells = [_unescape(str(values.get(h) or "")) for h in headers]
        if target in MULTI_VALUE_FIELDS:
            if any(c.strip() for c in cells):
                data[target] = convert_list("|".join(cells), own_export=own_export)
            continue
        raw = cells[0].strip()
        if not raw:
            continue
        try:
            if target in _TEXT_FIELDS:
                data[target] = raw
            elif target == "price":
                data[target] = convert_price(raw, currency=currency)
            elif target == "currency":
                convert_currency(raw, currency=currency)
            elif target == "starts_at":
                data[target] = convert_datetime(raw, time_zone=time_zone)
            else:
                data[target] = _CONVERTERS[target](raw)
        except CellError as exc:
            errors.append(str(exc))
    return data, errors


# --- planning -------------------------------------------------------------------------------------------------------

@dataclass
class RowOutcome:
    """What happens (or happened) to one data row: ``number`` counts as a spreadsheet does, the header being 1."""

    number: int
    action: str  # "create", "update" or "error"
    title: str
    reasons: list[str] = field(default_factory=list)
    values: dict[str | None, Any] = field(default_factory=dict, repr=False)
    item_id: int | None = None
    new_categories: list[str] = field(default_factory=list)
    slug: str = field(default="", repr=False)
    # What the writer needs: the item to save, the fields it changes and its categories and tags (None: unchanged).
    item: ContentItem | None = field(default=None, repr=False)
    changed: list[str] = field(default_factory=list, repr=False)
    categories: list[str] | None = field(default=None, repr=False)
    tags: list[str] | None = field(default=None, repr=False)


@dataclass
class ImportReport:
    """Every row's outcome, in file order, and the totals a preview or result page shows."""

    headers: list[str]
    rows: list[RowOutcome]
    dry_run: bool
    new_categories: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[RowOutcome]:
        return [row for row in self.rows if row.action == "error"]

    @property
    def totals(self) -> dict[str, int]:
        counts = {"rows": len(self.rows), "create": 0, "update": 0, "error": 0}
        for row in self.rows:
            counts[row.action] += 1
        counts["new_categories"] = len(self.new_categories)
        return counts

    def bad_rows_csv(self) -> str:
        """The bad rows as they were in the file, with their reasons in an extra last column, ready to fix."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([*self.headers, ERRORS_COLUMN])
        for row in self.errors:
            writer.writerow([row.values.get(h, "") for h in self.headers] + [" ".join(row.reasons)])
        return buffer.getvalue()


class _Catalog:
    """What the storefront already has (a few queries, up front) and what this import adds as it goes."""

    def __init__(self, tenant, editable_items: QuerySet[ContentItem] | None):
        self.tenant = tenant
        self.by_external_id: dict[str, tuple[int, str]] = {}
        self.by_slug: dict[str, tuple[int, str, str]] = {}
        self.by_title: dict[str, tuple[int, str, str]] = {}  # the oldest item of each title
        for pk, slug, external_id, title in ContentItem.objects.filter(tenant=tenant).order_by("pk").values_list(
                "pk", "slug", "external_id", "title"):
            self.by_slug[slug] = (pk, external_id, title)
            self.by_title.setdefault(_title_key(title), (pk, external_id, title))
            if external_id:
                self.by_external_id[external_id] = (pk, title)
        self.slugs = set(self.by_slug)
        self.editable = None if editable_items is None else set(editable_items.values_list("pk", flat=True))
        self.categories: dict[str, Category] = {}  # by name.casefold()
        self.category_slugs: set[str] = set()
        for category in Category.objects.filter(tenant=tenant):
            self._remember_category(category)
        self.tags = {tag.name.casefold(): tag for tag in Tag.objects.filter(tenant=tenant)}

    def _remember_category(self, category: Category) -> None:
        self.categories.setdefault(category.name.casefold(), category)
        self.category_slugs.add(category.slug)

    def category(self, name: str) -> Category | None:
        """The category of that name, ignoring case only.

        Not by slug: different names can slugify alike ("C++" and "C#" both to "c"), and a row must never be
        filed under another category without a word in the preview.
        """
        return self.categories.get(name.casefold())

    def match(self, external_id: str, slug: str, title: str | None = None) -> tuple[int, str] | None:
        """The existing item a row stands for: same external id, else same slug unless its external id differs.

        ``title`` is given when the slug was made from it. Then the slug stands for the row only on an item of that
        title, since different titles slugify alike ("C++ for Beginners" and "C# for Beginners" both to
        "c-for-beginners"); else an item of that title is the one, such as the "c-for-beginners-2" an earlier
        import of the row created.
        """
        if external_id and external_id in self.by_external_id:
            return self.by_external_id[external_id]
        found = self.by_slug.get(slug)
        if title is not None and (found is None or _title_key(found[2]) != _title_key(title)):
            found = self.by_title.get(_title_key(title))
        if found and (not external_id or not found[1] or found[1] == external_id):
            return found[0], found[2]
        return None

    def unique_slug(self, base: str, taken: set[str], limit: int) -> str:
        base = base[:limit] or "item"
        slug, n = base, 2
        while slug in taken:
            suffix = f"-{n}"
            slug, n = base[: limit - len(suffix)] + suffix, n + 1
        taken.add(slug)
        return slug


_RELATION_FIELDS = [f.name for f in ContentItem._meta.get_fields() if f.is_relation]


def _validate(item: ContentItem, reasons: list[str]) -> None:
    # Field validators (lengths, choices, URLs) and the model's own rule, without the uniqueness queries of
    # full_clean(): the plan checks uniqueness against what it loaded.
    try:
        item.clean_fields(exclude=[*_RELATION_FIELDS, "slug"])
        item.clean()
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            label = FIELDS.get(name, name)
            reasons.extend(f"{label}: {message}" for message in messages)


def _plan(*, tenant, rows: Sequence[Mapping[str | None, Any]], mapping: Mapping[str, str],
          options: ImportOptions, editable_items: QuerySet[ContentItem] | None, headers: Sequence[str] | None,
          dry_run: bool) -> tuple[ImportReport, _Catalog]:
    headers = list(headers) if headers is not None else [h for h in (rows[0] if rows else mapping) if h is not None]
    columns = mapping_check(headers=headers, mapping=mapping)
    currency, time_zone = tenant.currency, ZoneInfo(tenant.time_zone)
    own_export = _is_own_export(headers)
    catalog = _Catalog(tenant, editable_items)
    outcomes: list[RowOutcome] = []
    seen: dict[tuple[str, str], int] = {}
    targeted: dict[int, int] = {}

    for index, values in enumerate(rows):
        if not any(str(v).strip() for k, v in values.items() if k is not None):
            continue  # blank lines (often trailing) are not rows
        data, reasons = row_convert(values, columns, currency=currency, time_zone=time_zone, own_export=own_export)
        title = data.get("title", "")
        outcome = RowOutcome(number=index + 2, action="create", title=title, values=dict(values), reasons=reasons)
        outcomes.append(outcome)
        if not title:
            reasons.insert(0, _("Title is missing."))
        if any(str(cell).strip() for cell in values.get(None) or []):
            reasons.append(_("The row has more cells than the header row: is a value missing its quotes?"))
        external_id = data.get("external_id", "")
        outcome.slug = data.get("slug") or slugify(title, allow_unicode=True)[:200] or "item"

        if title:
            # A row without a slug is known by its title: the slug made from it is shared by other titles.
            if external_id:
                key = ("external_id", external_id)
            else:
                key = ("slug", outcome.slug) if data.get("slug") else ("title", _title_key(title))
            if key in seen:
                reasons.append(_("Duplicate of row %(number)s.") % {"number": seen[key]})
            else:
                seen[key] = outcome.number
            existing = catalog.match(external_id, outcome.slug, None if data.get("slug") else title)
            if existing is not None:
                pk, existing_title = existing
                if pk in targeted:
                    reasons.append(_("Duplicate of row %(number)s (the same existing item).")
                                   % {"number": targeted[pk]})
                elif not options.update_existing:
                    reasons.append(_("Duplicate of the existing item “%(title)s” (id %(id)s).")
                                   % {"title": existing_title, "id": pk})
                elif catalog.editable is not None and pk not in catalog.editable:
                    reasons.append(_("The existing item “%(title)s” is not one you may change.")
                                   % {"title": existing_title})
                targeted.setdefault(pk, outcome.number)
                outcome.item_id = pk
                outcome.action = "update"

        for name in data.get("categories") or []:
            if len(name) > 100:
                reasons.append(_("Category “%(name)s” is longer than 100 characters.") % {"name": name[:40]})
            elif catalog.category(name) is None:
                if options.create_missing_categories:
                    outcome.new_categories.append(name)
                else:
                    reasons.append(_("Unknown category “%(name)s”.") % {"name": name})
        reasons.extend(_("Tag “%(name)s” is longer than 60 characters.") % {"name": name[:40]}
                       for name in data.get("tags") or [] if len(name) > 60)
        outcome.categories = data.get("categories")
        outcome.tags = data.get("tags")
        outcome.changed = [name for name in data if name not in ("categories", "tags", "slug")]
        # A course, unless the file says otherwise: what other platforms export is mostly courses.
        # A file without a language column writes in the storefront's language, as the admin's "Add" form does.
        outcome.item = ContentItem(tenant=tenant, **{"kind": Kind.COURSE, "language": tenant.default_language,
                                                     **{k: data[k] for k in outcome.changed}})

    # Second pass: the model's own validation, with the items to update (and their relations) loaded in bulk.
    updating = [o.item_id for o in outcomes if o.item_id and not o.reasons]
    existing_items = {item.pk: item for item in ContentItem.objects.filter(tenant=tenant, pk__in=updating)
                      .prefetch_related("categories", "tags", "creators")} if updating else {}
    announced: set[str] = set()
    for outcome in outcomes:
        if outcome.action == "update" and outcome.item_id in existing_items:
            item = copy.copy(existing_items[outcome.item_id])
            for name in outcome.changed:
                setattr(item, name, getattr(outcome.item, name))
            outcome.item = item
        _validate(outcome.item, outcome.reasons)
        if outcome.reasons:
            outcome.action = "error"
            outcome.new_categories = []
            continue
        if outcome.action == "create":
            outcome.item.slug = catalog.unique_slug(outcome.slug, catalog.slugs, 200)
        # A category is new once: on the first good row that names it.
        fresh = [n for n in outcome.new_categories if n.casefold() not in announced]
        announced.update(n.casefold() for n in outcome.new_categories)
        outcome.new_categories = fresh
    report = ImportReport(headers=list(headers), rows=outcomes, dry_run=dry_run,
                          new_categories=[n for o in outcomes for n in o.new_categories])
    return report, catalog


def catalog_import_dry_run(*, tenant, rows: Sequence[Mapping[str | None, Any]], mapping: Mapping[str, str],
                           options: ImportOptions | Mapping[str, Any] | None = None,
                           editable_items: QuerySet[ContentItem] | None = None,
                           headers: Sequence[str] | None = None) -> ImportReport:
    """What an import of these rows would do, row by row, without writing anything.

    ``rows`` are ``{source header: cell}`` dicts (``import_file_read(...).rows``), ``mapping`` is
    ``{source header: our field or ""}``. ``editable_items`` limits which existing items may be updated (the admin
    passes its queryset, so a creator cannot overwrite others' items); None means all of the tenant's. Run inside
    the tenant's scope.
    """
    report, _catalog = _plan(tenant=tenant, rows=rows, mapping=mapping, options=ImportOptions.of(options),
                             editable_items=editable_items, headers=headers, dry_run=True)
    return report


# --- writing --------------------------------------------------------------------------------------------------------

# Rows written per batch: one savepoint and a handful of statements for the lot instead of six round trips a row.
BATCH_SIZE = 250
_DERIVED_FIELDS = ["description_html", "body_html", "search_text"]


def _insert(model, objects: list) -> None:
    """INSERT new rows, getting their ids back: in one statement where the database returns them (PostgreSQL,
    SQLite 3.35+), else one by one."""
    if not objects:
        return
    if connection.features.can_return_rows_from_bulk_insert:
        model.objects.bulk_create(objects)
    else:
        for obj in objects:
            obj.save(force_insert=True)


_SLUG_SYMBOLS = str.maketrans({"+": " plus ", "#": " sharp "})


def _category_slug(name: str) -> str:
    """A slug that keeps what "+" and "#" mean ("C++" -> "c-plus-plus", "C#" -> "c-sharp") rather than dropping them."""
    return slugify(name.translate(_SLUG_SYMBOLS), allow_unicode=True) or "category"


class _RowWriter:
    """Writes planned rows. Categories and tags it creates join the shared lookups only once their savepoint holds."""

    def __init__(self, *, tenant, actor, catalog: _Catalog):
        self.tenant = tenant
        self.actor = actor if getattr(actor, "is_authenticated", False) else None
        self.catalog = catalog
        self.category_links = ContentItem.categories.through
        self.tag_links = ContentItem.tags.through
        self.pending_categories: dict[str, Category] = {}
        self.pending_tags: dict[str, Tag] = {}
        self.published_changed = False

    # Categories and tags: found, or made (unsaved) and remembered as pending.
    def _category(self, name: str) -> tuple[Category, bool]:
        found = self.catalog.category(name) or self.pending_categories.get(name.casefold())
        if found is not None:
            return found, False
        slug = self.catalog.unique_slug(_category_slug(name), self.catalog.category_slugs, 100)
        category = self.pending_categories[name.casefold()] = Category(tenant=self.tenant, name=name, slug=slug)
        return category, True

    def _tag(self, name: str) -> tuple[Tag, bool]:
        found = self.catalog.tags.get(name.casefold()) or self.pending_tags.get(name.casefold())
        if found is not None:
            return found, False
        tag = self.pending_tags[name.casefold()] = Tag(tenant=self.tenant, name=name)
        return tag, True

    def _resolve(self, outcomes: list[RowOutcome]) -> dict[int, tuple[list[Category] | None, list[Tag] | None]]:
        """Each row's categories and tags, creating the missing ones in two statements."""
        resolved, new_categories, new_tags = {}, [], []
        for outcome in outcomes:
            categories = tags = None
            if outcome.categories is not None:
                categories = []
                for name in outcome.categories:
                    category, new = self._category(name)
                    categories.append(category)
                    new_categories += [category] if new else []
            if outcome.tags is not None:
                tags = []
                for name in outcome.tags:
                    tag, new = self._tag(name)
                    tags.append(tag)
                    new_tags += [tag] if new else []
            resolved[outcome.number] = (categories, tags)
        _insert(Category, new_categories)
        _insert(Tag, new_tags)
        return resolved

    def _refresh(self, item: ContentItem, categories, tags) -> None:
        """item_refresh_derived, handed the relations this import knows instead of reading them back.

        It reads categories, tags and creators only for a saved item. For a new one, a stand-in with a placeholder
        id and those relations as if prefetched lets it compute the full search text before the INSERT, so a batch
        of new items costs one INSERT and no UPDATE; for an updated one it spares three queries an item.
        """
        known = getattr(item, "_prefetched_objects_cache", {})
        target = copy.copy(item) if item.pk is None else item
        if item.pk is None:
            target.pk = -1
        target._prefetched_objects_cache = {
            "categories": categories if categories is not None else known.get("categories", []),
            "tags": tags if tags is not None else known.get("tags", []),
            "creators": known.get("creators", []),
        }
        try:
            item_refresh_derived(item=target, save=False)
        finally:
            del target._prefetched_objects_cache
        for name in _DERIVED_FIELDS:
            setattr(item, name, getattr(target, name))
        if item.status in (ContentItem.Status.PUBLISHED, ContentItem.Status.ARCHIVED):
            self.published_changed = True

    def write_batch(self, outcomes: list[RowOutcome]) -> None:
        """Write several rows at once; call inside a savepoint, then ``commit()`` (or ``rollback()`` on failure)."""
        resolved = self._resolve(outcomes)
        creates = [o for o in outcomes if o.action == "create"]
        updates = [o for o in outcomes if o.action == "update"]
        for outcome in outcomes:
            self._refresh(outcome.item, *resolved[outcome.number])
        for outcome in creates:
            outcome.item.created_by = self.actor
        _insert(ContentItem, [o.item for o in creates])
        # One UPDATE for the rows that changed the same fields (a re-import usually changes the same ones).
        now, same_fields = timezone.now(), {}
        for outcome in updates:
            outcome.item.updated_at = now
            fields = tuple(dict.fromkeys([*outcome.changed, *_DERIVED_FIELDS, "updated_at"]))
            same_fields.setdefault(fields, []).append(outcome.item)
        for fields, items in same_fields.items():
            bulk_set(items, fields)
        replaced_categories = [o.item.pk for o in updates if o.categories is not None]
        replaced_tags = [o.item.pk for o in updates if o.tags is not None]
        if replaced_categories:
            self.category_links.objects.filter(contentitem_id__in=replaced_categories).delete()
        if replaced_tags:
            self.tag_links.objects.filter(contentitem_id__in=replaced_tags).delete()
        cat_links, tag_links = [], []
        for outcome in outcomes:
            categories, tags = resolved[outcome.number]
            cat_links += [self.category_links(contentitem_id=outcome.item.pk, category_id=c.pk)
                          for c in categories or []]
            tag_links += [self.tag_links(contentitem_id=outcome.item.pk, tag_id=t.pk) for t in tags or []]
            outcome.item_id = outcome.item.pk
        self.category_links.objects.bulk_create(cat_links)
        self.tag_links.objects.bulk_create(tag_links)

    def commit(self) -> int:
        """The savepoint held: what it created is now there for the next rows. Returns the categories created."""
        created = len(self.pending_categories)
        for category in self.pending_categories.values():
            self.catalog._remember_category(category)
        self.catalog.tags.update({t.name.casefold(): t for t in self.pending_tags.values()})
        self.pending_categories, self.pending_tags = {}, {}
        return created

    def rollback(self, outcomes: list[RowOutcome]) -> None:
        """The savepoint was rolled back: forget what it created, and the ids the database handed out in it."""
        self.catalog.category_slugs -= {category.slug for category in self.pending_categories.values()}
        self.pending_categories, self.pending_tags = {}, {}
        for outcome in outcomes:
            if outcome.action == "create":
                outcome.item.pk = None
                outcome.item._state.adding = True
                outcome.item_id = None


def _write_in_savepoint(writer: _RowWriter, outcomes: list[RowOutcome]) -> Exception | None:
    """Write rows inside one savepoint; on failure roll it back whole and return the error."""
    try:
        with transaction.atomic():
            writer.write_batch(outcomes)
    except (DatabaseError, ValidationError, ApplicationError) as exc:
        writer.rollback(outcomes)
        return exc
    return None


def catalog_import_run(*, tenant, actor, rows: Sequence[Mapping[str | None, Any]], mapping: Mapping[str, str],
                       options: ImportOptions | Mapping[str, Any] | None = None, progress: Progress | None = None,
                       editable_items: QuerySet[ContentItem] | None = None,
                       headers: Sequence[str] | None = None) -> ImportReport:
    """Import the good rows as draft items (or update matching items) and report the bad ones with their reasons.

    Plans exactly as ``catalog_import_dry_run`` does, then writes the good rows in batches, each batch inside a
    savepoint. When a batch fails (a database error, a clash with an item saved meanwhile) it is rolled back and its
    rows are written again one at a time, each inside its own savepoint: the row that fails is rolled back whole,
    categories and tags it created included, and reported as an error, while the other rows stand.
    ``progress(done, total)`` is called after every batch. Leaves one ``catalog.import`` audit row. Run inside the
    tenant's scope.
    """
    options = ImportOptions.of(options)
    report, catalog = _plan(tenant=tenant, rows=rows, mapping=mapping, options=options,
                            editable_items=editable_items, headers=headers, dry_run=False)
    writer = _RowWriter(tenant=tenant, actor=actor, catalog=catalog)
    total = len(report.rows)
    created_categories = 0
    with transaction.atomic():
        for start in range(0, total, BATCH_SIZE):
            batch = [o for o in report.rows[start:start + BATCH_SIZE] if o.action != "error"]
            if len(batch) > 1 and _write_in_savepoint(writer, batch) is None:
                created_categories += writer.commit()
            else:
                for outcome in batch:
                    error = _write_in_savepoint(writer, [outcome])
                    if error is None:
                        created_categories += writer.commit()
                    else:
                        outcome.action = "error"
                        outcome.new_categories = []
                        outcome.reasons.append(_("The row could not be saved: %(error)s") % {"error": error})
            if progress is not None:
                progress(min(start + BATCH_SIZE, total), total)
        if writer.published_changed:
            catalog_changed(tenant.pk)
        # An updated published item is live as updated: published as its next version, as an edit in the admin is.
        republished = sum(item_publish_changes(item=o.item, actor=writer.actor) is not None for o in report.rows
                          if o.action == "update" and o.item.status == ContentItem.Status.PUBLISHED)
        report.new_categories = [n for o in report.rows for n in o.new_categories]
        totals = report.totals
        audit_log_write(tenant=tenant, actor=actor, action="catalog.import", data={
            "rows": totals["rows"], "created": totals["create"], "updated": totals["update"],
            "republished": republished, "errors": totals["error"], "categories_created": created_categories,
            "options": options.as_dict()})
    return report


# --- export ---------------------------------------------------------------------------------------------------------

def _guard(cell: str) -> str:
    # A cell starting like a formula would run as one when the file is opened in a spreadsheet.
    return f"'{cell}" if cell.startswith(_FORMULA_START) else cell




def catalog_export_write(*, items: Iterable[ContentItem], out: IO[str]) -> int:
    """Write items as CSV in our own column names (the importer reads them back as they are); returns the count.

    Prices are in major units with the currency's decimals and the currency in its own column; times are ISO 8601
    in UTC; categories and tags are separated by "|".
    """
    if isinstance(items, QuerySet):
        items = items.select_related("tenant").prefetch_related("categories", "tags")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for item in items:
        currency = item.tenant.currency
        row = {
            "external_id": item.external_id, "title": item.title, "subtitle": item.subtitle, "slug": item.slug,
            "kind": item.kind, "language": item.language, "level": item.level,
            "categories": " | ".join(c.name for c in item.categories.all()),
            "tags": " | ".join(t.name for t in item.tags.all()),
            "price": major_units(item.price, currency), "currency": currency,
            "duration_minutes": str(item.duration_minutes), "is_featured": "true" if item.is_featured else "false",
            "starts_at": item.starts_at.astimezone(UTC).isoformat() if item.starts_at else "",
            "join_url": item.join_url, "description": item.description,
        }
        writer.writerow([_guard(row[column]) for column in EXPORT_COLUMNS])
        count += 1
    return count


def catalog_export_csv(*, items: Iterable[ContentItem]) -> str:
    """The items as CSV text (see ``catalog_export_write``)."""
    buffer = io.StringIO()
    catalog_export_write(items=items, out=buffer)
    return buffer.getvalue()
