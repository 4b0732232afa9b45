"""Dump the primary keys of the contract tables from one DuckDB file.

Runs inside a virtual environment with DuckDB's Python package (compare.py
uses duckdb 2.0.0).  Usage::

    python pk_dump.py DB_FILE SPEC_JSON OUT_JSON

SPEC_JSON maps a table name to its key columns.  Tables are looked up in any
schema (helpscout-etl writes to ``main``, target-duckdb to its target schema).
Every key component is rendered as text: integers (BIGINT or HUGEINT) in
decimal, timestamps (with or without time zone) in UTC as
``YYYY-MM-DDTHH:MM:SS``; a key is its components joined by ``|``.
The output maps each table to ``{"schema", "rows", "keys"}`` (keys sorted),
or to ``null`` when the table does not exist.
"""

import json
import sys

import duckdb


def render(column, data_type):
    quoted = '"' + column.replace('"', '""') + '"'
    upper = data_type.upper()
    if upper.startswith("TIMESTAMP WITH TIME ZONE") or upper == "TIMESTAMPTZ":
        return f"strftime(timezone('UTC', {quoted}), '%Y-%m-%dT%H:%M:%S')"
    if upper.startswith("TIMESTAMP"):
        return f"strftime({quoted}, '%Y-%m-%dT%H:%M:%S')"
    if upper == "VARCHAR":
        # target-duckdb may store a timestamp key as text
        return f"coalesce(strftime(try_cast({quoted} AS TIMESTAMPTZ) AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S'), {quoted})"
    if upper in ("DOUBLE", "FLOAT", "REAL") or upper.startswith("DECIMAL"):
        return f"CAST(CAST({quoted} AS HUGEINT) AS VARCHAR)"
    return f"CAST({quoted} AS VARCHAR)"


def main():
    db_path, spec_path, out_path = sys.argv[1:4]
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    con = duckdb.connect(db_path, read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    result = {}
    for table, pk in spec.items():
        found = con.execute(
            "SELECT table_schema FROM information_schema.tables "
            "WHERE lower(table_name) = lower(?) AND table_type = 'BASE TABLE' ORDER BY table_schema",
            [table],
        ).fetchall()
        if not found:
            result[table] = None
            continue
        schema = found[0][0]
        types = dict(
            (name.lower(), (name, dtype))
            for name, dtype in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND lower(table_name) = lower(?)",
                [schema, table],
            ).fetchall()
        )
        missing = [col for col in pk if col.lower() not in types]
        if missing:
            result[table] = {"schema": schema, "error": f"key column(s) missing: {missing}"}
            continue
        parts = [render(*types[col.lower()]) for col in pk]
        expr = " || '|' || ".join(f"coalesce({p}, '<null>')" for p in parts)
        rows = con.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]
        keys = [r[0] for r in con.execute(f'SELECT {expr} FROM "{schema}"."{table}"').fetchall()]
        result[table] = {"schema": schema, "rows": rows, "keys": sorted(set(keys)), "duplicate_keys": len(keys) - len(set(keys))}
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
