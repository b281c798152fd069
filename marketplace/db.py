"""Database helpers the ORM does not offer."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import Model


def bulk_set(objs: Sequence[Model], fields: Sequence[str]) -> int:
    """Write ``fields`` of each of ``objs`` (all of one model, already saved) in one statement.

    On PostgreSQL this is ``UPDATE ... FROM (VALUES ...)``, each value cast to its column's type; Django's
    ``bulk_update`` builds one ``CASE WHEN`` expression per row and field, which costs more Python than the round
    trips it saves on a batch of a few dozen rows. Other databases get ``bulk_update``. Returns the rows written."""
    if not objs:
        return 0
    model = type(objs[0])
    if connection.vendor != "postgresql":
        return model._base_manager.bulk_update(objs, fields)
    meta, quote = model._meta, connection.ops.quote_name
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    row = "(" + ", ".join(f"%s::{column.cast_db_type(connection)}" for column in columns) + ")"
    params = [column.get_db_prep_save(getattr(obj, column.attname), connection) for obj in objs for column in columns]
    # Only the model's own quoted identifiers and placeholders are put together here; every value is a parameter.
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    assignments = ", ".join(f"{quote(c.column)} = v.{quote(c.column)}" for c in columns[1:])
    names = ", ".join(quote(c.column) for c in columns)
    values = ", ".join([row] * len(objs))
    sql = f"UPDATE {table} AS t SET {assignments} FROM (VALUES {values}) AS v({names}) WHERE t.{pk} = v.{pk}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
