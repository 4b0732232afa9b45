#!/usr/bin/env python3
"""What a refresh costs each kind of lake: hive Parquet on local disk, Delta on local disk,
and Delta on an S3-compatible server (moto's, on 127.0.0.1).

One simulator (`helpscout-etl simulate --conversations N`, rate limit lifted), three output
folders, one per lake. Each is backfilled; then one mutation batch (the same as
benches/refresh_cost.py's: ~220 changes, 2 deletions, 2 merges) is applied once, the clock
moved 10 minutes on, and each is refreshed. For every sync: wall time, CPU, peak RSS, and
what the storage received, counted on the storage's side (files or objects new or changed
since before the sync, and their bytes; the Delta log included).

moto comes from PyPI into $CARGO_TARGET_DIR/tmp/moto-venv (the tests' own), started on a
free loopback port and stopped by its PID; its buckets are listed with unsigned
ListObjectsV2 requests (moto does not check signatures).

    python3 benches/lake_cost.py                   # 20000 conversations
    python3 benches/lake_cost.py --conversations 2000

Figures go to benches/results/lake_cost.json (--out FILE).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "peer"))
import compare  # noqa: E402
import refresh_cost  # noqa: E402  (Simulator, BATCH, http, child_env)

TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.expanduser("~"), ".cache", "helpscout-etl-target"))
LAKES = OrderedDict(
    [
        ("parquet-local", ("parquet", None)),
        ("delta-local", ("delta", None)),
        ("delta-s3", ("delta", "s3://lake/delta")),
    ]
)
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def log(message):
    sys.stderr.write(f"[lake_cost] {time.strftime('%H:%M:%S')} {message}\n")
    sys.stderr.flush()


class Moto:
    def __init__(self, logs):
        venv = os.path.join(TARGET, "tmp", "moto-venv")
        server = os.path.join(venv, "bin", "moto_server")
        if not os.path.exists(server):
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "moto[server]"], check=True)
        self.port = refresh_cost.free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = open(os.path.join(logs, "moto.log"), "w", encoding="utf-8")
        self.proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(self.port)], stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.2)
        urllib.request.urlopen(urllib.request.Request(self.endpoint + "/lake", method="PUT"), timeout=10).read()

    def objects(self):
        """key -> (size, etag) of every object in the bucket."""
        out, token = {}, None
        while True:
            url = self.endpoint + "/lake?list-type=2&max-keys=1000" + (f"&continuation-token={urllib.parse.quote(token)}" if token else "")
            root = ET.fromstring(urllib.request.urlopen(url, timeout=60).read())
            for c in root.findall(f"{S3_NS}Contents"):
                out[c.find(f"{S3_NS}Key").text] = (int(c.find(f"{S3_NS}Size").text), c.find(f"{S3_NS}ETag").text)
            if root.findtext(f"{S3_NS}IsTruncated") != "true":
                return out
            token = root.findtext(f"{S3_NS}NextContinuationToken")

    def env(self):
        return {"AWS_ACCESS_KEY_ID": "AKIABENCH", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        self._log.close()


def local_objects(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            st = os.stat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    return out


def written(before, after):
    """Objects new or changed between two listings, and their bytes."""
    changed = [k for k, v in after.items() if before.get(k) != v]
    return len(changed), sum(after[k][0] for k in changed)


def run(binary, sim, moto, lake, out_dir, work, label, timeout):
    fmt, uri = LAKES[lake]
    config = os.path.join(work, f"{lake}.toml")
    compare.write_our_config(config, sim.base, out_dir, refresh_cost.RATE_LIMIT, None)
    with open(config, "a", encoding="utf-8") as f:
        f.write(f'lake = "{fmt}"\n' + (f'lake_uri = "{uri}"\n' if uri else ""))
    env = refresh_cost.child_env()
    if uri:
        env.update(moto.env())
        listing = moto.objects
    else:
        listing = lambda: local_objects(os.path.join(out_dir, fmt))  # noqa: E731
    before = listing()
    logs = os.path.join(work, "logs")
    m = compare.run_measured([binary, "sync", "--config", config, "--json"], os.path.join(logs, f"{label}.json"), os.path.join(logs, f"{label}.log"), timeout, env=env)
    objects, nbytes = written(before, listing())
    with open(os.path.join(logs, f"{label}.json"), encoding="utf-8") as f:
        report = json.load(f)
    r = OrderedDict(m)
    r["cpu_s"] = round(m["user_s"] + m["sys_s"], 2)
    r.update(status=report.get("status"), requests=report.get("requests"), longest_commit_window_ms=report.get("longest_commit_window_ms"), objects_written=objects, bytes_written=nbytes)
    log(f"  {label}: {r['status']}, {r['wall_s']} s wall, {r['cpu_s']} s CPU, {r['max_rss_mib']} MiB, {objects} objects, {nbytes / 1e6:.1f} MB written")
    if r["status"] != "success":
        raise RuntimeError(f"{label} failed: {report.get('error')}")
    return r


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conversations", type=int, default=20000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--binary", default=os.path.join(TARGET, "debug", "helpscout-etl"))
    p.add_argument("--timeout", type=int, default=3600)
    p.add_argument("--out", default=os.path.join(HERE, "results", "lake_cost.json"))
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="lake-cost-")
    os.makedirs(os.path.join(work, "logs"))
    moto = Moto(os.path.join(work, "logs"))
    sim = refresh_cost.Simulator(args.binary, args.conversations, args.seed, os.path.join(work, "logs", "simulator.log"), 600)
    compare.SIM_PID[0] = sim.proc.pid
    results = OrderedDict(conversations=args.conversations, seed=args.seed, lakes=OrderedDict())
    try:
        for lake in LAKES:
            results["lakes"][lake] = OrderedDict(backfill=run(args.binary, sim, moto, lake, os.path.join(work, lake), work, f"{lake}-backfill", args.timeout))
        sim.mutate(refresh_cost.BATCH)
        refresh_cost.http(sim.base, "/_admin/advance?seconds=600", method="POST")
        for lake in LAKES:
            results["lakes"][lake]["refresh"] = run(args.binary, sim, moto, lake, os.path.join(work, lake), work, f"{lake}-refresh", args.timeout)
    finally:
        sim.stop()
        moto.stop()
    base = results["lakes"]["parquet-local"]["refresh"]["wall_s"]
    print(f"\n{args.conversations} conversations: a refresh after the mutation batch\n")
    print("| lake | refresh wall | vs hive local | CPU | peak RSS | objects written | MB written | backfill wall | backfill MB written |")
    print("|---|---|---|---|---|---|---|---|---|")
    for lake, r in results["lakes"].items():
        f, b = r["refresh"], r["backfill"]
        print(f"| {lake} | {f['wall_s']} s | {f['wall_s'] / base:.2f}× | {f['cpu_s']} s | {f['max_rss_mib']} MiB | {f['objects_written']} | {f['bytes_written'] / 1e6:.2f} | {b['wall_s']} s | {b['bytes_written'] / 1e6:.1f} |")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    log(f"figures in {args.out}")


if __name__ == "__main__":
    main()
