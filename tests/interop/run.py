#!/usr/bin/env python3
"""Interop check: the demo's outputs, read by the tools analysts and data teams use.

- The Parquet folder reads with hive partition discovery in pyarrow and in DuckDB's Python
  package, with the contract's types, and holds exactly the DuckDB file's rows.
- The DuckDB file opens in DuckDB's Python package of the bundled engine's version, and every
  catalogued join key, written verbatim, matches rows.

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
REQUIREMENTS = ["duckdb==2.0.0", "pyarrow>=15"]


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
    print("interop: 0 failed")


if __name__ == "__main__":
    if not in_venv():
        ensure_venv()
    main()
