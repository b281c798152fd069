"""A GIN index for full-text search, on PostgreSQL only (SQLite searches by substring)."""

from django.db import migrations

INDEX = "catalog_item_search_gin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # The expression matches what SearchVector("search_text", config="simple") compiles to, so the planner uses it.
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON catalog_contentitem "
            "USING gin (to_tsvector('simple'::regconfig, COALESCE(search_text, '')))"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
