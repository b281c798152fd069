"""PostgreSQL set-up shared by the benchmarks: connection parameters from a URL, and a database of their own."""

from __future__ import annotations

import contextlib
import urllib.parse


class BenchError(RuntimeError):
    pass


def pg_params(url: str) -> dict:
    parts = urllib.parse.urlsplit(url)
    return {"user": urllib.parse.unquote(parts.username or "postgres"),
            "password": urllib.parse.unquote(parts.password) if parts.password else None,
            "host": parts.hostname or "127.0.0.1", "port": parts.port or 5432}


def pg_connect(url: str, dbname: str):
    import psycopg2

    return psycopg2.connect(dbname=dbname, **pg_params(url))


def database_name(url: str) -> str:
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    if not name:
        raise BenchError(f"BENCH_DATABASE_URL has no database name: {url!r}")
    return name


@contextlib.contextmanager
def server_cursor(url: str):
    """A cursor on ``url``'s server outside any database of ours (the ``postgres`` database), in autocommit."""
    conn = pg_connect(url, "postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()


def drop_database(url: str, name: str) -> None:
    from psycopg2 import sql

    with server_cursor(url) as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def ensure_database(url: str, name: str, *, drop: bool) -> bool:
    """Create database ``name`` on ``url``'s server (dropping it first when ``drop``); True when created now."""
    from psycopg2 import sql

    if drop:
        drop_database(url, name)
    with server_cursor(url) as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone():
            return False
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def clone_database(url: str, source: str, name: str) -> None:
    """Database ``name``, a copy of ``source`` as it is now (replacing any earlier ``name``). Nobody may be
    connected to ``source`` meanwhile: PostgreSQL copies it file by file."""
    from psycopg2 import sql

    drop_database(url, name)
    with server_cursor(url) as cursor:
        cursor.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(source)))
