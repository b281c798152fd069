"""Benchmark the catalog CSV import: 5,000 rows in another platform's format, dry run, import and re-import.

Run from the project root with ``.venv/bin/python bench/catalog_import.py``. It uses the configured database
(DATABASE_URL, or the local default), creates throwaway tenants named ``bench-import-<random>`` and deletes them and
everything imported into them afterwards. Timings are taken without tracemalloc; peak memory is measured on a second
tenant with tracemalloc on, since tracing slows everything it watches.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import sys
import time
import tracemalloc
from pathlib import Path

ROWS = 5000

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings.local")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from catalog.importing import (  # noqa: E402
    ImportOptions,
    catalog_import_dry_run,
    catalog_import_run,
    import_file_read,
    import_mapping_suggest,
)
from catalog.models import Category, ContentItem, ImportMapping, Tag  # noqa: E402
from marketplace.models import AuditLog, Tenant  # noqa: E402
from marketplace.tenancy import each_tenant  # noqa: E402

HEADER = ["课程ID", "课程名称", "副标题", "类型", "课程分类", "标签", "售价", "时长", "难度", "是否推荐", "开课时间",
          "语言", "课程介绍"]
KINDS = ["视频", "音频", "图文", "电子书", "直播", "课程"]
LEVELS = ["入门", "中级", "高级", "All levels"]
CATEGORIES = ["数据科学", "编程", "人工智能", "产品设计", "商业", "语言学习", "职场", "摄影"]


def platform_export(rows: int) -> bytes:
    """A course export as a Chinese platform writes it: UTF-8 with BOM, its own headers, symbols and words."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for n in range(rows):
        kind = KINDS[n % len(KINDS)]
        price = "待定" if n % 250 == 7 else ("免费" if n % 10 == 0 else f"￥{(n % 500) + 9}.{n % 100:02d}")
        writer.writerow([
            f"XK-{n:06d}", f"第{n}课：数据分析与 Python 实战 {n}", "从入门到精通", kind,
            f"{CATEGORIES[n % 8]}、{CATEGORIES[(n + 3) % 8]}", f"python|tag{n % 40}|热门",
            price, f"{n % 3}小时{n % 60}分钟", LEVELS[n % 4], "是" if n % 7 == 0 else "否",
            "2025-06-01T20:00:00+08:00" if kind == "直播" else "", "中文" if n % 5 else "English",
            f"## 课程简介\n\n这是第 {n} 门课程，适合**{LEVELS[n % 4]}**学员。\n\n- 要点一\n- 要点二",
        ])
    return ("\ufeff" + buffer.getvalue()).encode()


def make_tenant() -> Tenant:
    slug = f"bench-import-{secrets.token_hex(4)}"
    return Tenant.objects.create(slug=slug, name=f"Benchmark {slug}", currency="CNY", default_language="zh-hans")


def delete_tenant(tenant: Tenant) -> None:
    for _ in each_tenant([tenant]):
        ContentItem.objects.filter(tenant=tenant).delete()
        for model in (Category, Tag, ImportMapping, AuditLog):
            model.objects.filter(tenant=tenant).delete()
    tenant.delete()


def timed(label: str, count: int, service, **kwargs):
    started = time.perf_counter()
    report = service(**kwargs)
    elapsed = time.perf_counter() - started
    totals = report.totals
    print(f"{label:<28} {elapsed:7.2f} s  {count / elapsed:9.0f} rows/s   "
          f"create {totals['create']}, update {totals['update']}, errors {totals['error']}")
    return report


def traced(label: str, service, **kwargs) -> None:
    tracemalloc.start()
    try:
        service(**kwargs)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"{label:<28} peak {peak / 1024 / 1024:7.1f} MiB (tracemalloc)")


def main() -> None:
    data = platform_export(ROWS)
    print(f"database: {connection.vendor}; file: {ROWS} rows, {len(data) / 1024 / 1024:.1f} MiB")
    started = time.perf_counter()
    table = import_file_read(data=data)
    print(f"{'read and parse the file':<28} {time.perf_counter() - started:7.2f} s")
    mapping = import_mapping_suggest(headers=table.headers)
    create = ImportOptions(create_missing_categories=True)
    update = ImportOptions(create_missing_categories=True, update_existing=True)
    tenants = [make_tenant(), make_tenant()]
    try:
        timing, tracing = tenants
        for tenant in each_tenant([timing]):
            args = {"tenant": tenant, "rows": table.rows, "mapping": mapping, "headers": table.headers}
            timed("dry run", ROWS, catalog_import_dry_run, options=create, **args)
            timed("import (new items)", ROWS, catalog_import_run, actor=None, options=create, **args)
            timed("re-import (updates)", ROWS, catalog_import_run, actor=None, options=update, **args)
        for tenant in each_tenant([tracing]):
            args = {"tenant": tenant, "rows": table.rows, "mapping": mapping, "headers": table.headers}
            traced("dry run", catalog_import_dry_run, options=create, **args)
            traced("import (new items)", catalog_import_run, actor=None, options=create, **args)
    finally:
        for tenant in tenants:
            delete_tenant(tenant)
    print("throwaway tenants deleted")


if __name__ == "__main__":
    main()
