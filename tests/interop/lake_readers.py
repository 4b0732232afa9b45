#!/usr/bin/env python3
"""The lake, read by the engines data teams publish it to.

Runs the demo twice (`helpscout-etl demo`: a backfill, a simulated day of changes with merges and
deletions, a refresh), once into a Delta lake and once into hive Parquet, then checks:

- deltalake (delta-rs): every Delta table (the 11 tables and `helpscout_log`) opens; its rows
  equal the DuckDB file's (count, and distinct primary keys); its types are the contract's
  (timestamps in UTC microseconds, lists, structs); time travel to the backfill's version gives
  the backfill's row count of `conversations`.
- polars: `scan_delta` counts, and the documented join key threads -> conversations.
- DuckDB (Python 2.0.0): the Delta tables through deltalake's pyarrow datasets (DuckDB's own
  `delta` extension would be downloaded at run time, and nothing but PyPI is reachable), counts and
  the join.
- Spark 4 (pyspark from PyPI, the machine's Java 17) on the hive Parquet: types (timestamps,
  arrays, structs, the partition column as a string), counts, and the join in Spark SQL.

Creates its own virtual environment (outside the work tree). Exits non-zero on the first failed
check.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "helpscout-etl-target"))
VENV = TARGET / "lake-readers-venv"
REQUIREMENTS = ["duckdb==2.0.0", "pyarrow==26.0.1", "deltalake==1.6.6", "polars==2.1.0", "pyspark==4.3.0"]
JOIN = ("conversation_threads", "conversation_id", "conversations", "id")


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


def binary() -> list:
    given = os.environ.get("HELPSCOUT_ETL_BIN")
    return [given] if given else ["cargo", "run", "--quiet", "--"]


def demo(out: Path, lake: str) -> None:
    subprocess.run([*binary(), "demo", "--dir", str(out), "--conversations", "300", "--lake", lake], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def arrow_matches(duck_type: str, arrow_type) -> bool:
    import pyarrow as pa

    if duck_type.endswith("[]"):
        return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)
    if duck_type.startswith("STRUCT"):
        return pa.types.is_struct(arrow_type)
    return {
        "BIGINT": pa.types.is_int64,
        "VARCHAR": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t),
        "BOOLEAN": pa.types.is_boolean,
        "TIMESTAMPTZ": lambda t: pa.types.is_timestamp(t) and t.unit == "us" and t.tz in ("UTC", "+00:00"),
    }[duck_type](arrow_type)


def check_delta(out: Path, catalog: list) -> None:
    import deltalake
    import duckdb
    import polars as pl

    db = duckdb.connect(str(out / "helpscout.duckdb"), read_only=True)
    lake = out / "delta"
    names = [t["name"] for t in catalog] + ["helpscout_log"]
    datasets = {}
    for table in catalog + [{"name": "helpscout_log", "columns": [], "primary_key": ["event_id"]}]:
        name = table["name"]
        dt = deltalake.DeltaTable(str(lake / name))
        dataset = dt.to_pyarrow_dataset()
        datasets[name] = dataset
        rows = db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        got = dataset.count_rows()
        keys = [k for k in table["primary_key"]]
        distinct = len(set(zip(*[dataset.to_table(columns=keys).column(k).to_pylist() for k in keys]))) if got else 0
        if not (rows == got == distinct):
            fail(f"Delta {name}: DuckDB {rows} rows, deltalake {got}, distinct keys {distinct}")
        for column in table["columns"]:
            field = dataset.schema.field(column["name"])
            if not arrow_matches(column["duckdb"], field.type):
                fail(f"Delta {name}.{column['name']} is {field.type}, expected {column['duckdb']}")
        print(f"{name:<26} {rows:>6} rows  version {dt.version():>3}  deltalake = DuckDB, types as the contract")

    # Time travel: some version is the backfill's (the demo's account has 300 conversations
    # before its simulated day of changes).
    dt = deltalake.DeltaTable(str(lake / "conversations"))
    history = sorted(dt.history(), key=lambda h: h["version"])
    if len(history) < 3:
        fail(f"conversations has {len(history)} versions; a backfill and a refresh make more")
    now = dt.to_pyarrow_dataset().count_rows()
    counts = [deltalake.DeltaTable(str(lake / "conversations"), version=h["version"]).to_pyarrow_dataset().count_rows() for h in history]
    if counts[-1] != now:
        fail(f"the latest version holds {counts[-1]} rows, the table {now}")
    if 300 not in counts:
        fail(f"no version of conversations holds the backfill's 300 rows: {counts}")
    print(f"time travel: conversations versions {[h['version'] for h in history]} hold {counts} rows")

    # polars
    for name in ("conversations", "conversation_threads"):
        n = pl.scan_delta(str(lake / name)).select(pl.len()).collect().item()
        if n != datasets[name].count_rows():
            fail(f"polars scan_delta {name}: {n} rows")
    left, lkey, right, rkey = JOIN
    joined = pl.scan_delta(str(lake / left)).join(pl.scan_delta(str(lake / right)), left_on=lkey, right_on=rkey).select(pl.len()).collect().item()
    threads = datasets[left].count_rows()
    if joined != threads:
        fail(f"polars: {left}.{lkey} = {right}.{rkey} joins {joined} of {threads} threads")
    print(f"polars {pl.__version__}: scan_delta counts, and the join key matches every thread ({joined})")

    # DuckDB over the Delta tables (through deltalake's datasets)
    con = duckdb.connect()
    for name in (left, right):
        con.register(name, datasets[name])
    n = con.execute(f"SELECT count(*) FROM {left} t JOIN {right} c ON t.{lkey} = c.{rkey}").fetchone()[0]
    if n != threads or con.execute(f"SELECT count(*) FROM {right}").fetchone()[0] != datasets[right].count_rows():
        fail(f"DuckDB on Delta: the join gives {n} of {threads}")
    print(f"duckdb {duckdb.__version__} on the Delta tables: counts and the join key ({n})")
    print(f"deltalake {deltalake.__version__}: {len(names)} Delta tables read")


def check_spark(out: Path, catalog: list) -> None:
    import duckdb
    from pyspark.sql import SparkSession
    from pyspark.sql import types as T

    db = duckdb.connect(str(out / "helpscout.duckdb"), read_only=True)
    root = out / "parquet"
    # Loopback only: Spark would otherwise bind the driver to the machine's outside address.
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("helpscout-etl-lake-readers")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        by_name = {t["name"]: t for t in catalog}
        for name in ("conversations", "conversation_threads"):
            df = spark.read.option("basePath", str(root / name)).parquet(str(root / name))
            df.createOrReplaceTempView(name)
            types = {f.name: f.dataType for f in df.schema.fields}
            for column in by_name[name]["columns"]:
                ty, duck = types.get(column["name"]), column["duckdb"]
                ok = (
                    isinstance(ty, T.ArrayType) if duck.endswith("[]")
                    else isinstance(ty, T.StructType) if duck.startswith("STRUCT")
                    else isinstance(ty, {"BIGINT": T.LongType, "VARCHAR": T.StringType, "BOOLEAN": T.BooleanType, "TIMESTAMPTZ": T.TimestampType}[duck])
                )
                if not ok:
                    fail(f"Spark {name}.{column['name']} is {ty}, expected {duck}")
            key = by_name[name]["partition_key"]
            if key and not isinstance(types.get(key), T.StringType):
                fail(f"Spark {name}: partition {key} is {types.get(key)}, expected a string")
            rows = db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            if df.count() != rows:
                fail(f"Spark {name}: {df.count()} rows, DuckDB {rows}")
        left, lkey, right, rkey = JOIN
        n = spark.sql(f"SELECT count(*) FROM {left} t JOIN {right} c ON t.{lkey} = c.{rkey}").collect()[0][0]
        threads = db.execute(f"SELECT count(*) FROM {left}").fetchone()[0]
        if n != threads:
            fail(f"Spark SQL: the join key matches {n} of {threads} threads")
        print(f"spark {spark.version}: hive Parquet types (timestamps, arrays, structs, string partitions), counts, the join key in Spark SQL ({n})")
    finally:
        spark.stop()


def main() -> None:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="helpscout-lake-readers-"))
    catalog = json.loads(subprocess.run([*binary(), "tables", "--json"], cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    delta, hive = work / "delta-demo", work / "hive-demo"
    demo(delta, "delta")
    demo(hive, "parquet")
    check_delta(delta, catalog)
    check_spark(hive, catalog)
    shutil.rmtree(work, ignore_errors=True)
    print(f"lake readers: 0 failed ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    if not in_venv():
        ensure_venv()
    main()
