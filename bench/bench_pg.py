"""PostgreSQL set-up shared by the benchmarks: connection parameters from a URL, and a database of their own."""

from __future__ import annotations

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


def ensure_database(url: str, name: str, *, drop: bool) -> bool:
    """Create database ``name`` on ``url``'s server (dropping it first when ``drop``); True when created now."""
    from psycopg2 import sql

    conn = pg_connect(url, "postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            if drop:
                cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone():
                return False
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        conn.close()
