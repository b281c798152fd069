"""PostgreSQL guard of the ledger against TRUNCATE, which row triggers never see: ``manage.py flush`` or a stray
``TRUNCATE`` would otherwise empty the books in one statement.

A session that must empty them on purpose (the test suite resetting its own database between tests) says so with
the ``zhiku.ledger_truncate = 'allowed'`` setting; nothing in the product sets it. SQLite has no TRUNCATE.
"""

from django.db import migrations

NO_TRUNCATE = """
CREATE OR REPLACE FUNCTION zhiku_ledger_no_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('zhiku.ledger_truncate', true) = 'allowed' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'ledger rows are append-only: TRUNCATE on % refused', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;
"""

TABLES = ("payments_journalentry", "payments_posting", "payments_ledgeraccount")


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # No parameters: the function's message contains a % placeholder of its own.
        cursor.execute(NO_TRUNCATE)
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        schema_editor.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                              "FOR EACH STATEMENT EXECUTE FUNCTION zhiku_ledger_no_truncate()")


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS zhiku_ledger_no_truncate()")


class Migration(migrations.Migration):
    dependencies = [("payments", "0022_verbose_names")]
    operations = [migrations.RunPython(install, remove)]
