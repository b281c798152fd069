"""PostgreSQL guard of ledger accounts: whose money an account holds, and where, never changes, and no account is
deleted.

Postings name their account by id, so changing an account's payee (or tenant, code, currency, kind) would move its
money without touching a hashed row. Only the display name may change. SQLite relies on the services alone.
"""

from django.db import migrations

ACCOUNT_GUARD = """
CREATE OR REPLACE FUNCTION zhiku_ledger_account_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.id, NEW.tenant_id, NEW.code, NEW.currency, NEW.kind, NEW.creator_id,
                             NEW.promoter_id, NEW.partner_id)
                 IS NOT DISTINCT FROM (OLD.id, OLD.tenant_id, OLD.code, OLD.currency, OLD.kind, OLD.creator_id,
                                       OLD.promoter_id, OLD.partner_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'ledger accounts keep their owner, code, currency and kind: % on % refused',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # No parameters: the function's message contains % placeholders of its own.
        cursor.execute(ACCOUNT_GUARD)
    schema_editor.execute("DROP TRIGGER IF EXISTS payments_ledgeraccount_guard ON payments_ledgeraccount")
    schema_editor.execute("CREATE TRIGGER payments_ledgeraccount_guard BEFORE UPDATE OR DELETE "
                          "ON payments_ledgeraccount FOR EACH ROW EXECUTE FUNCTION zhiku_ledger_account_guard()")


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS payments_ledgeraccount_guard ON payments_ledgeraccount")
    schema_editor.execute("DROP FUNCTION IF EXISTS zhiku_ledger_account_guard()")


class Migration(migrations.Migration):
    dependencies = [("payments", "0008_subscription_price_and_billing_day")]
    operations = [migrations.RunPython(install, remove)]
