"""The balance check of journal entries runs with its owner's rights, so row-level security cannot hide postings
from it.

Run as the caller, the check saw only the postings the caller's policies let through: a role that switched its
storefront setting (``zhiku.tenant_id``) before commit could hide an entry's postings and commit an entry that does
not balance. As ``SECURITY DEFINER`` it runs as the tables' owner, whom the policies do not apply to (they are
enabled, not forced), with a fixed ``search_path``. The function itself is 0002's. SQLite has no triggers; the
services check there.
"""

from django.db import migrations

FUNCTION = "zhiku_ledger_entry_balances()"


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = schema_editor.quote_name(cursor.fetchone()[0])
    schema_editor.execute(f"ALTER FUNCTION {FUNCTION} SECURITY DEFINER SET search_path = {schema}, pg_temp")


def restore(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER FUNCTION {FUNCTION} SECURITY INVOKER RESET search_path")


class Migration(migrations.Migration):
    dependencies = [("payments", "0012_refund_failures")]
    operations = [migrations.RunPython(install, restore)]
