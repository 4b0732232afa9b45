#!/usr/bin/env python3
"""Interop check: the demo's outputs, read by the tools analysts and data teams use.

- The Parquet folder reads with hive partition discovery in pyarrow and in DuckDB's Python
  package, with the contract's types, and holds exactly the DuckDB file's rows.
- The DuckDB file opens in DuckDB's Python package of the bundled engine's version, and every
  catalogued join key, written verbatim, matches rows.
- The support metrics views run unchanged in DuckDB's Python package (on the file, ICU loaded,
  a local time zone) and in DuckDB's CLI (ICU, another time zone; the CLI on PyPI is older
  than the file's storage format, so it runs the same `sql/*.sql` files over the lake's
  Parquet), and give the bundled engine's numbers.

Creates its own virtual environment (outside the work tree) and runs the demo itself.
Exits non-zero on the first failed check.
"""
import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "helpscout-etl-target"))
VENV = TARGET / "interop-venv"
# The DuckDB engine bundled by the Rust crate is 2.0.0: the file must open in the same version.
REQUIREMENTS = ["duckdb==2.0.0", "pyarrow>=15", "duckdb-cli==1.5.6"]


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_venv() -> None:
    python = VENV / "bin" / "python"
    marker = VENV / "requirements.txt"
    if not python.exists() or not marker.exists() or marker.read_text() != "\n".join(REQUIREMENTS):
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
        marker.write_text("\n".join(REQUIREMENTS))
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


def fail(message: str) -> None:
    print(f"FAILED: {message}")
    sys.exit(1)


def arrow_matches(duck_type: str, arrow_type) -> bool:
    import pyarrow as pa

    if duck_type.endswith("[]"):
        return pa.types.is_list(arrow_type)
    if duck_type.startswith("STRUCT"):
        return pa.types.is_struct(arrow_type)
    return {
        "BIGINT": pa.types.is_int64,
        "VARCHAR": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
        "BOOLEAN": pa.types.is_boolean,
        "TIMESTAMPTZ": lambda t: pa.types.is_timestamp(t) and t.unit == "us" and t.tz in ("UTC", "+00:00"),
    }[duck_type](arrow_type)


def main() -> None:
    import duckdb
    import pyarrow.dataset as ds

    out = Path(tempfile.mkdtemp(prefix="helpscout-interop-"))
    cargo = ["cargo", "run", "--quiet", "--"]
    subprocess.run([*cargo, "demo", "--dir", str(out), "--conversations", "300"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    catalog = json.loads(subprocess.run([*cargo, "tables", "--json"], cwd=ROOT, check=True,
                                        capture_output=True, text=True).stdout)
    db = duckdb.connect(str(out / "helpscout.duckdb"), read_only=True)
    print(f"duckdb {duckdb.__version__} opened {out / 'helpscout.duckdb'} read-only")

    for table in catalog:
        name = table["name"]
        duck_types = dict(db.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?", [name]).fetchall())
        for column in table["columns"]:
            found = duck_types.get(column["name"])
            wanted = column["duckdb"].replace("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE")
            if found is None or found.replace('"', "") != wanted.replace('"', ""):
                fail(f"DuckDB {name}.{column['name']} is {found}, expected {wanted}")
        rows = db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]

        folder = out / "parquet" / name
        dataset = ds.dataset(folder, format="parquet", partitioning="hive")
        for column in table["columns"]:
            field = dataset.schema.field(column["name"])
            if not arrow_matches(column["duckdb"], field.type):
                fail(f"Parquet {name}.{column['name']} is {field.type}, expected {column['duckdb']}")
        if table["partition_key"] and rows and table["partition_key"] not in dataset.schema.names:
            fail(f"Parquet {name}: hive partition {table['partition_key']} not discovered")
        parquet_rows = dataset.count_rows()
        duck_parquet = db.execute(
            f"SELECT count(*) FROM read_parquet('{folder}/**/*.parquet', hive_partitioning = true)").fetchone()[0]
        keys = ", ".join(f'"{k}"' for k in table["primary_key"])
        distinct = db.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM read_parquet('{folder}/**/*.parquet', hive_partitioning = true))"
        ).fetchone()[0]
        if not (rows == parquet_rows == duck_parquet == distinct):
            fail(f"{name}: DuckDB {rows} rows, pyarrow {parquet_rows}, DuckDB-on-Parquet {duck_parquet}, distinct keys {distinct}")
        print(f"{name:<26} {rows:>7} rows  DuckDB = Parquet (pyarrow, duckdb), types as the contract")

    joins = db.execute("SELECT join_key, left_table, right_table FROM _helpscout_join_keys ORDER BY join_key").fetchall()
    for join_key, left, right in joins:
        matched = db.execute(f'SELECT count(*) FROM "{left}" JOIN "{right}" ON {join_key}').fetchone()[0]
        if matched == 0:
            fail(f"join key matches no rows: {join_key}")
    print(f"{len(joins)} join keys, written verbatim, match rows in duckdb {duckdb.__version__}")

    check_metric_views(db, out)
    print("interop: 0 failed")


# The support metrics, queried the same way in every engine (each cell as text, rows sorted).
METRIC_QUERIES = [
    "SELECT * FROM conversation_metrics",
    "SELECT * FROM productivity",
    "SELECT * FROM productivity_between('2025-01-01', '2026-01-01 12:00')",
    "SELECT * FROM busiest_times",
    "SELECT * FROM busiest_day",
    "SELECT * FROM channel_metrics",
    "SELECT * FROM tag_trends",
]
# What the metric views read, and the files defining them, for the CLI.
METRIC_TABLES = ["conversations", "conversation_threads", "happiness_ratings_report", "mailboxes", "users", "teams", "team_members"]
METRIC_FILES = ["040_happiness_ratings.sql", "080_conversation_metrics.sql", "081_productivity.sql", "082_busiest_times.sql",
                "083_channel_metrics.sql", "084_tag_trends.sql"]


def as_text(query: str) -> str:
    return f"SELECT * FROM (SELECT COLUMNS(*)::VARCHAR FROM ({query})) ORDER BY ALL"


def same_rows(a, b) -> bool:
    def same(x, y):
        if x == y:
            return True
        try:
            fx, fy = float(x), float(y)
        except (TypeError, ValueError):
            return False
        return abs(fx - fy) <= 1e-9 * max(abs(fx), abs(fy))
    return len(a) == len(b) and all(len(r) == len(s) and all(same(x, y) for x, y in zip(r, s)) for r, s in zip(a, b))


def check_metric_views(db, out: Path) -> None:
    import duckdb

    path = out / "helpscout.duckdb"
    bundled = {}
    for query in METRIC_QUERIES:
        result = subprocess.run(["cargo", "run", "--quiet", "--example", "view_rows", "--", str(path), as_text(query)],
                                cwd=ROOT, check=True, capture_output=True, text=True)
        bundled[query] = [list(r) for r in json.loads(result.stdout)]
    if not bundled["SELECT * FROM conversation_metrics"]:
        fail("the demo has no conversation metrics")

    # DuckDB's Python package, on the file itself, in a local time zone.
    db.execute("SET TimeZone = 'Asia/Kolkata'")
    if db.execute("SELECT current_setting('TimeZone')").fetchone()[0] != "Asia/Kolkata":
        fail("the Python package did not take a local time zone")
    for query in METRIC_QUERIES:
        rows = [list(r) for r in db.execute(as_text(query)).fetchall()]
        if not same_rows(rows, bundled[query]):
            fail(f"duckdb {duckdb.__version__} (Python, Asia/Kolkata) differs from the bundled engine on: {query}")
    print(f"{len(METRIC_QUERIES)} metric queries: duckdb {duckdb.__version__} (Python, ICU, Asia/Kolkata) = the bundled engine")

    # DuckDB's CLI: the lake's tables, the same SQL files, another time zone.
    cli = VENV / "bin" / "duckdb"
    version = subprocess.run([str(cli), "--version"], check=True, capture_output=True, text=True).stdout.split()[0]
    setup = ["LOAD icu;", "SET TimeZone = 'America/Los_Angeles';"]
    for table in METRIC_TABLES:
        setup.append(f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{out / 'parquet' / table}/**/*.parquet', hive_partitioning = false);")
    for name in METRIC_FILES:
        setup.append((ROOT / "sql" / name).read_text())
    cli_db = out / "cli.duckdb"
    subprocess.run([str(cli), "-bail", str(cli_db)], input="\n".join(setup), check=True, capture_output=True, text=True)
    for query in METRIC_QUERIES:
        script = f"LOAD icu; SET TimeZone = 'America/Los_Angeles'; {as_text(query)};"
        result = subprocess.run([str(cli), "-readonly", "-json", str(cli_db), "-c", script],
                                check=True, capture_output=True, text=True)
        objects = json.loads(result.stdout or "[]", object_pairs_hook=lambda pairs: [v for _, v in pairs])
        if not same_rows(objects, bundled[query]):
            fail(f"the DuckDB CLI {version} (America/Los_Angeles) differs from the bundled engine on: {query}")
    print(f"{len(METRIC_QUERIES)} metric queries: the DuckDB CLI {version} (ICU, America/Los_Angeles, same sql/ files over the lake) = the bundled engine")


if __name__ == "__main__":
    if not in_venv():
        ensure_venv()
    main()
