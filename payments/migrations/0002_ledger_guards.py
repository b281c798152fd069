"""PostgreSQL guards of the ledger: rows are append-only, and every journal entry balances per currency.

The balance check is a deferred constraint trigger, so an entry's postings can be inserted one by one inside a
transaction and are checked together at commit. SQLite relies on the services alone.
"""

from django.db import migrations

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION zhiku_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are append-only: % on % refused (post a reversing entry instead)',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;
"""

BALANCED = """
CREATE OR REPLACE FUNCTION zhiku_ledger_entry_balances() RETURNS trigger AS $$
DECLARE
    unbalanced text;
BEGIN
    SELECT currency INTO unbalanced FROM payments_posting
     WHERE entry_id = NEW.entry_id GROUP BY currency HAVING SUM(amount) <> 0 LIMIT 1;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'journal entry % does not balance in %', NEW.entry_id, unbalanced
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
"""

TABLES = ("payments_journalentry", "payments_posting")


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # No parameters: the functions' messages contain % placeholders of their own.
        cursor.execute(APPEND_ONLY)
        cursor.execute(BALANCED)
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        schema_editor.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                              "FOR EACH ROW EXECUTE FUNCTION zhiku_ledger_append_only()")
    schema_editor.execute("DROP TRIGGER IF EXISTS payments_posting_balanced ON payments_posting")
    schema_editor.execute("CREATE CONSTRAINT TRIGGER payments_posting_balanced AFTER INSERT ON payments_posting "
                          "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION zhiku_ledger_entry_balances()")


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP TRIGGER IF EXISTS payments_posting_balanced ON payments_posting")
    schema_editor.execute("DROP FUNCTION IF EXISTS zhiku_ledger_append_only()")
    schema_editor.execute("DROP FUNCTION IF EXISTS zhiku_ledger_entry_balances()")


class Migration(migrations.Migration):
    dependencies = [("payments", "0001_initial")]
    operations = [migrations.RunPython(install, remove)]
