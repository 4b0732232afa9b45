#!/usr/bin/env python3
"""What one incremental refresh of helpscout-etl costs at different account sizes.

For each size in --sizes (default 20000,200000), against its own simulator
(`helpscout-etl simulate --conversations N --seed S --rate-limit 1000000`, on
127.0.0.1 only):

  backfill   `helpscout-etl sync --json` into a fresh output folder;
  refresh    the simulator's stats reset, one fixed mutation batch applied
             (POST /_admin/mutate: ~220 changes, exactly 2 deletions and 2
             merges, see BATCH), the clock moved 10 minutes on, then
             `sync --json` again on the same folder;
  no change  the simulator's clock moved 15 minutes on (past the 5-minute
             overlap, as a scheduled refresh), then a third `sync --json` with
             nothing changed in between.

Each sync: wall time, CPU, peak RSS (GNU time `-f %M`, falling back to
os.wait4(), see benches/peer/compare.py), the run report's `requests`,
`commits`, `longest_commit_window_ms`, `parquet_partitions_written` and
`parquet_bytes_written` (n/a when the binary does not report it yet), and the
requests per endpoint the simulator counted (GET /_admin/stats, the token
endpoint shown apart).

Then one table per phase with a column per size, the ratios of the largest
size to the smallest, and PASS/FAIL for the targets:
  - refresh requests and wall time at the largest size <= 1.3x the smallest;
  - longest commit window <= 1000 ms in every phase;
  - peak RSS <= 300 MiB in every phase;
  - no-change refresh: at most one request per list endpoint, one per parent
    record (mailbox fields and folders, team members) and one count check
    (a second /v2/conversations request).

Standard library only; the helpers for measuring a process and writing the
sync's configuration come from benches/peer/compare.py.  All figures go to
benches/results/refresh_cost.json (--out FILE to override).

    python3 benches/refresh_cost.py                        # 20000,200000
    python3 benches/refresh_cost.py --sizes 2000,20000     # quick
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peer"))
import compare  # noqa: E402  (benches/peer: run_measured, write_our_config, stats_delta, table)

HOST = "127.0.0.1"
RATE_LIMIT = 1000000
PHASES = OrderedDict(
    [
        ("backfill", "backfill (first sync, fresh output folder)"),
        ("refresh", "refresh after the mutation batch"),
        ("nochange", "no-change refresh (third sync, nothing changed)"),
    ]
)
# One mutation batch (crates/helpscout-sim/src/mutate.rs, MutationPlan): 217 changes,
# exactly 2 deletions and 2 merges.  The seed is fixed so every size gets the same plan.
BATCH = OrderedDict(
    seed=20261202,
    new_conversations=30,
    replies=60,
    workflow_changes=45,
    customer_edits=25,
    invalid_emails=1,
    merges=2,
    deletions=2,
    new_customers=15,
    new_ratings=20,
    user_edits=2,
    mailbox_edits=1,
    folder_changes=4,
    workflow_edits=4,
    team_edits=2,
    team_member_changes=4,
)
TARGET_RATIO = 1.3
TARGET_WINDOW_MS = 1000
TARGET_RSS_MIB = 300
TOKEN_ENDPOINT = "POST /v2/oauth2/token"
# The top-level lists a refresh reads (at most one request each when nothing changed).
LIST_ENDPOINTS = [
    "GET /v2/conversations",
    "GET /v2/customers",
    "GET /v2/reports/happiness/ratings",
    "GET /v2/mailboxes",
    "GET /v2/users",
    "GET /v2/teams",
    "GET /v2/workflows",
]
# Child lists: one request per parent record (the parent table whose rows count them).
CHILD_ENDPOINTS = OrderedDict(
    [
        ("GET /v2/mailboxes/{id}/fields", "mailboxes"),
        ("GET /v2/mailboxes/{id}/folders", "mailboxes"),
        ("GET /v2/teams/{id}/members", "teams"),
    ]
)
COUNT_CHECK_ENDPOINT = "GET /v2/conversations"


def log(message):
    sys.stderr.write(f"[refresh_cost] {time.strftime('%H:%M:%S')} {message}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------
# simulator


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def http(base, path, method="GET", body=None, timeout=120):
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as response:
        raw = response.read()
    return json.loads(raw.decode("utf-8")) if raw.strip() else None


class Simulator:
    """`helpscout-etl simulate` on 127.0.0.1:PORT, up once GET /_admin/now answers."""

    def __init__(self, binary, conversations, seed, log_path, timeout):
        self.log_path = log_path
        self.proc = None
        for attempt in range(3):
            self.port = free_port()
            self.base = f"http://{HOST}:{self.port}"
            cmd = [binary, "simulate", "--conversations", str(conversations), "--seed", str(seed),
                   "--rate-limit", str(RATE_LIMIT), "--port", str(self.port)]
            log("starting simulator: " + " ".join(cmd))
            self._log = open(log_path, "a", encoding="utf-8")
            started = time.perf_counter()
            self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            if self._wait_up(timeout):
                self.startup_s = round(time.perf_counter() - started, 2)
                log(f"simulator up on {self.base} (pid {self.proc.pid}) after {self.startup_s} s")
                return
            code = self.proc.poll()
            self._log.close()
            if code is None:
                self.stop()
                raise RuntimeError(f"simulator not answering {self.base}/_admin/now after {timeout}s, see {log_path}")
            log(f"simulator exited with {code} before answering (port {self.port} taken?), retrying")
        raise RuntimeError(f"simulator did not start, see {log_path}")

    def _wait_up(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                http(self.base, "/_admin/now", timeout=5)
                return True
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.2)
        return False

    def stats(self):
        return compare.stats(self.base)

    def reset_stats(self):
        http(self.base, "/_admin/stats/reset", method="POST", body={})

    def mutate(self, plan):
        return http(self.base, "/_admin/mutate", method="POST", body=plan, timeout=600)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            log(f"stopping simulator pid {self.proc.pid}")
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._log.closed:
            self._log.close()


# --------------------------------------------------------------------------
# one sync


def child_env():
    """The environment of a sync: no HELPSCOUT_* from the caller's shell (it would override the config)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPSCOUT_")}
    env["HELPSCOUT_ETL_LOG"] = os.environ.get("HELPSCOUT_ETL_LOG", "warn")
    return env


def run_sync(binary, sim, config, label, logs, timeout):
    """One `helpscout-etl sync --json`: process figures, the run report's, the simulator's counts."""
    before = sim.stats()
    stdout_path = os.path.join(logs, f"{label}.json")
    stderr_path = os.path.join(logs, f"{label}.log")
    log(f"helpscout-etl sync ({label})")
    m = compare.run_measured([binary, "sync", "--config", config, "--json"], stdout_path, stderr_path, timeout, env=child_env())
    after = sim.stats()
    try:
        with open(stdout_path, encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, ValueError):
        report = None
    r = OrderedDict(m)
    req = compare.stats_delta(before, after)
    r["sim_requests"] = OrderedDict(
        total=req["total"],
        api_requests=req["api_requests"],
        token_requests=req["token_requests"],
        rate_limited_429=req["rate_limited_429"],
        by_status=req["by_status"],
        by_endpoint=req["by_endpoint"],
    )
    if report:
        r["status"] = report.get("status")
        for key in ("requests", "rate_limited", "commits", "longest_commit_window_ms", "parquet_partitions_written"):
            r[key] = report.get(key)
        r["parquet_bytes_written"] = report.get("parquet_bytes_written")  # None: not reported by this binary
        r["error"] = report.get("error")
        r["tables"] = OrderedDict(
            (t["table"], OrderedDict((k, t.get(k)) for k in ("rows", "removed", "requests", "duration_ms", "method", "status", "error")))
            for t in report.get("tables", [])
        )
        r["rows_total"] = sum((t.get("rows") or 0) for t in r["tables"].values())
    else:
        r["status"] = None
        with open(stderr_path, encoding="utf-8", errors="replace") as handle:
            r["error"] = "no JSON report; stderr tail: " + handle.read()[-2000:]
    log(
        f"  {label}: exit {r['exit_code']}, status {r['status']}, {r['wall_s']} s, {r['max_rss_mib']} MiB, "
        f"{req['api_requests']} API requests (+{req['token_requests']} token), commits {r.get('commits')}, "
        f"longest window {r.get('longest_commit_window_ms')} ms"
    )
    if r["exit_code"] != 0 or r["status"] != "success":
        log(f"  {label}: sync did not succeed: {r.get('error')} (see {stderr_path})")
    return r


def run_size(binary, n, args, work):
    size_dir = os.path.join(work, f"n{n}")
    logs = os.path.join(size_dir, "logs")
    out_dir = os.path.join(size_dir, "out")
    os.makedirs(logs)
    entry = OrderedDict(conversations=n, seed=args.seed)
    sim = Simulator(binary, n, args.seed, os.path.join(logs, "simulator.log"), args.timeout)
    compare.SIM_PID[0] = sim.proc.pid
    try:
        entry["simulator_startup_s"] = sim.startup_s
        config = os.path.join(size_dir, "helpscout.toml")
        compare.write_our_config(config, sim.base, out_dir, RATE_LIMIT, None)

        sim.reset_stats()
        entry["backfill"] = run_sync(binary, sim, config, f"{n}-backfill", logs, args.timeout)

        sim.reset_stats()
        started = time.perf_counter()
        rep = sim.mutate(BATCH)
        entry["mutation"] = OrderedDict(
            applied_s=round(time.perf_counter() - started, 3),
            at=rep.get("at"),
            counts=OrderedDict((k, len(v)) for k, v in rep.items() if isinstance(v, list)),
        )
        log("  mutation batch: " + ", ".join(f"{k} {v}" for k, v in entry["mutation"]["counts"].items()))
        # The refresh runs 10 minutes after the batch (a schedule), so that the next refresh's
        # overlap (5 minutes before this one started) no longer reaches the batch.
        http(sim.base, "/_admin/advance?seconds=600", method="POST")
        entry["refresh"] = run_sync(binary, sim, config, f"{n}-refresh", logs, args.timeout)

        # A scheduled refresh later (15 minutes, past the 5-minute overlap): nothing changed since.
        http(sim.base, "/_admin/advance?seconds=900", method="POST")
        sim.reset_stats()
        entry["nochange"] = run_sync(binary, sim, config, f"{n}-nochange", logs, args.timeout)
        entry["nochange"]["allowance"] = nochange_allowance(entry["backfill"], entry["nochange"])
        entry["output_bytes"] = dir_bytes(out_dir)
    finally:
        sim.stop()
        compare.SIM_PID[0] = None
    return entry


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def nochange_allowance(backfill, nochange):
    """Per endpoint: one per list, one per parent record, one count check; everything else 0."""
    rows = {k: (v.get("rows") or 0) for k, v in (backfill.get("tables") or {}).items()}
    allowed = OrderedDict((e, 1) for e in LIST_ENDPOINTS)
    allowed[COUNT_CHECK_ENDPOINT] += 1
    # The report's part not read again is checked by one count too.
    allowed["GET /v2/reports/happiness/ratings"] += 1
    for e, parent in CHILD_ENDPOINTS.items():
        allowed[e] = rows.get(parent, 0)
    seen = nochange["sim_requests"]["by_endpoint"]
    per = OrderedDict()
    for e in sorted(set(allowed) | set(seen)):
        if e == TOKEN_ENDPOINT:
            continue
        made, limit = seen.get(e, 0), allowed.get(e, 0)
        per[e] = OrderedDict(requests=made, allowed=limit, ok=made <= limit)
    return OrderedDict(
        total_allowed=sum(allowed.values()),
        parents=OrderedDict((p, rows.get(p, 0)) for p in sorted(set(CHILD_ENDPOINTS.values()))),
        by_endpoint=per,
        ok=all(v["ok"] for v in per.values()),
    )


# --------------------------------------------------------------------------
# report


def na(value):
    return "n/a" if value is None else value


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def phase_rows(runs, phase):
    ps = [r[phase] for r in runs]
    rows = [
        ["exit / status", *[f"{p['exit_code']} / {p.get('status')}" for p in ps]],
        ["wall s", *[p["wall_s"] for p in ps]],
        ["CPU user+sys s", *[round(p["user_s"] + p["sys_s"], 2) for p in ps]],
        ["simulator CPU s", *[na(p.get("simulator_cpu_s")) for p in ps]],
        ["peak RSS MiB", *[p["max_rss_mib"] for p in ps]],
        ["requests (run report)", *[na(p.get("requests")) for p in ps]],
        ["API requests (simulator)", *[p["sim_requests"]["api_requests"] for p in ps]],
        ["token requests", *[p["sim_requests"]["token_requests"] for p in ps]],
        ["429s", *[p["sim_requests"]["rate_limited_429"] for p in ps]],
        ["commits", *[na(p.get("commits")) for p in ps]],
        ["longest commit window ms", *[na(p.get("longest_commit_window_ms")) for p in ps]],
        ["parquet partitions written", *[na(p.get("parquet_partitions_written")) for p in ps]],
        ["parquet bytes written", *[na(p.get("parquet_bytes_written")) for p in ps]],
        ["rows (run report)", *[na(p.get("rows_total")) for p in ps]],
    ]
    eps = sorted(set().union(*[p["sim_requests"]["by_endpoint"] for p in ps]))
    for e in eps:
        rows.append([f"  {e}", *[p["sim_requests"]["by_endpoint"].get(e, 0) for p in ps]])
    return rows


def checks(runs):
    small, large = runs[0], runs[-1]
    out = []

    def add(name, ok, detail):
        out.append(OrderedDict(check=name, result="n/a" if ok is None else ("PASS" if ok else "FAIL"), detail=detail))

    ok_runs = all(r[p]["exit_code"] == 0 and r[p].get("status") == "success" for r in runs for p in PHASES)
    add("every sync exited 0 with status success", ok_runs, "")
    if len(runs) > 1:
        a, b = large["refresh"]["sim_requests"]["api_requests"], small["refresh"]["sim_requests"]["api_requests"]
        rr = ratio(a, b)
        add(f"refresh requests at {large['conversations']} <= {TARGET_RATIO}x at {small['conversations']}",
            rr is not None and rr <= TARGET_RATIO, f"{a} / {b} = {rr}x")
        a, b = large["refresh"]["wall_s"], small["refresh"]["wall_s"]
        rw = ratio(a, b)
        add(f"refresh wall at {large['conversations']} <= {TARGET_RATIO}x at {small['conversations']}",
            rw is not None and rw <= TARGET_RATIO, f"{a} s / {b} s = {rw}x")
    else:
        add("refresh requests and wall, largest vs smallest size", None, "one size only")
    worst = max(((r[p].get("longest_commit_window_ms") or 0, r["conversations"], p) for r in runs for p in PHASES))
    missing = [f"{r['conversations']} {p}" for r in runs for p in PHASES if r[p].get("longest_commit_window_ms") is None]
    add(f"longest commit window <= {TARGET_WINDOW_MS} ms in every phase", worst[0] <= TARGET_WINDOW_MS and not missing,
        f"worst {worst[0]} ms ({worst[1]} {worst[2]})" + (f"; not reported: {', '.join(missing)}" if missing else ""))
    worst = max(((r[p]["max_rss_mib"], r["conversations"], p) for r in runs for p in PHASES))
    add(f"peak RSS <= {TARGET_RSS_MIB} MiB in every phase", worst[0] <= TARGET_RSS_MIB, f"worst {worst[0]} MiB ({worst[1]} {worst[2]})")
    for r in runs:
        al = r["nochange"]["allowance"]
        over = [f"{e} {v['requests']} > {v['allowed']}" for e, v in al["by_endpoint"].items() if not v["ok"]]
        add(f"no-change refresh at {r['conversations']}: <= 1 per list, 1 per parent, 1 count check",
            al["ok"], f"{r['nochange']['sim_requests']['api_requests']} requests, allowance {al['total_allowed']}"
            + (f"; over: {', '.join(over)}" if over else ""))
    return out


def print_report(report):
    runs = report["runs"]
    sizes = [str(r["conversations"]) for r in runs]
    out = []
    out.append(f"\n== refresh cost: seed {report['seed']}, rate limit lifted, sizes {', '.join(sizes)} ==")
    out.append(f"peak RSS: {report['rss_method']}")
    out.append("simulator startup s (generation): " + ", ".join(f"{r['conversations']}: {r['simulator_startup_s']}" for r in runs))
    for phase, title in PHASES.items():
        out.append(f"\n-- {title} --")
        out.append(compare.table(["conversations", *sizes], phase_rows(runs, phase)))
        if phase == "backfill":
            out.append("\n-- mutation batch (POST /_admin/mutate; counts from its report) --")
            keys = list(runs[0]["mutation"]["counts"])
            rows = [[k, *[r["mutation"]["counts"].get(k) for r in runs]] for k in keys]
            rows.append(["applied in s", *[r["mutation"]["applied_s"] for r in runs]])
            out.append(compare.table(["conversations", *sizes], rows))
        if phase == "nochange":
            out.append("\nno-change allowance per endpoint (requests / allowed)")
            eps = list(runs[0]["nochange"]["allowance"]["by_endpoint"])
            for r in runs[1:]:
                eps += [e for e in r["nochange"]["allowance"]["by_endpoint"] if e not in eps]
            rows = []
            for e in eps:
                cells = []
                for r in runs:
                    v = r["nochange"]["allowance"]["by_endpoint"].get(e)
                    cells.append(f"{v['requests']} / {v['allowed']}{'' if v['ok'] else ' OVER'}" if v else "")
                rows.append([e, *cells])
            out.append(compare.table(["endpoint", *sizes], rows))
    if len(runs) > 1:
        rt = report["ratios_largest_over_smallest"]
        out.append(f"\n-- ratios, {runs[-1]['conversations']} / {runs[0]['conversations']} conversations --")
        out.append(compare.table(["", "ratio"], [[k, na(v)] for k, v in rt.items()]))
    out.append("\n-- targets --")
    for c in report["checks"]:
        out.append(f"{c['result']:4}  {c['check']}" + (f"  ({c['detail']})" if c["detail"] else ""))
    print("\n".join(out))


def write_json(path, report):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")


# --------------------------------------------------------------------------


def main():
    default_target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "helpscout-etl-target")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(default_target, "debug", "helpscout-etl"),
                        help="helpscout-etl binary (default $CARGO_TARGET_DIR/debug/helpscout-etl)")
    parser.add_argument("--sizes", default="20000,200000", help="comma list of account sizes (default 20000,200000; up to 1000000)")
    parser.add_argument("--seed", type=int, default=7, help="the simulated account's seed (default 7)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (outputs, configs, logs)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per sync and for the simulator to come up (default 3600)")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "refresh_cost.json"), help="JSON report (default benches/results/refresh_cost.json)")
    args = parser.parse_args()
    binary = os.path.abspath(os.path.expanduser(args.bin))
    if not os.access(binary, os.X_OK):
        parser.error(f"not an executable: {binary}")
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes: not a comma list of integers: {args.sizes}")
    if not sizes or any(n < 1 or n > 1000000 for n in sizes):
        parser.error("--sizes: each size between 1 and 1000000")

    started = time.perf_counter()
    report = OrderedDict(
        benchmark="refresh_cost",
        started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        machine=OrderedDict(cpus=os.cpu_count(), note="loopback simulator on the same machine; the CPUs may be shared with other work"),
        rss_method=("GNU time (/usr/bin/time -f %M) around each sync" if compare.TIME_BIN else
                    "os.wait4() ru_maxrss of each sync (may include this script's RSS: vfork)"),
        versions=OrderedDict(
            helpscout_etl=subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip(),
            git_commit=subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
            git_dirty=bool(subprocess.run(["git", "-C", HERE, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()),
        ),
        binary=binary,
        seed=args.seed,
        sizes=sizes,
        mutation_plan=BATCH,
        targets=OrderedDict(refresh_ratio_max=TARGET_RATIO, commit_window_ms_max=TARGET_WINDOW_MS, peak_rss_mib_max=TARGET_RSS_MIB),
        runs=[],
    )
    work = tempfile.mkdtemp(prefix="helpscout-refresh-cost-")
    log(f"working in {work}")
    out = os.path.abspath(args.out)
    try:
        for n in sizes:
            report["runs"].append(run_size(binary, n, args, work))
    except BaseException as exc:
        report["error"] = f"stopped at size {n}: {exc!r}"
        report["script_wall_s"] = round(time.perf_counter() - started, 1)
        write_json(out, report)
        log(f"{report['error']}; partial figures in {out}")
        raise
    finally:
        if args.keep:
            log(f"kept the temporary folders in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    runs = report["runs"]
    if len(runs) > 1:
        s, l = runs[0], runs[-1]
        report["ratios_largest_over_smallest"] = OrderedDict(
            [
                ("conversations", ratio(l["conversations"], s["conversations"])),
                ("refresh API requests", ratio(l["refresh"]["sim_requests"]["api_requests"], s["refresh"]["sim_requests"]["api_requests"])),
                ("refresh wall", ratio(l["refresh"]["wall_s"], s["refresh"]["wall_s"])),
                ("no-change API requests", ratio(l["nochange"]["sim_requests"]["api_requests"], s["nochange"]["sim_requests"]["api_requests"])),
                ("no-change wall", ratio(l["nochange"]["wall_s"], s["nochange"]["wall_s"])),
                ("backfill wall", ratio(l["backfill"]["wall_s"], s["backfill"]["wall_s"])),
            ]
        )
    report["checks"] = checks(runs)
    report["all_targets_met"] = all(c["result"] != "FAIL" for c in report["checks"])
    report["script_wall_s"] = round(time.perf_counter() - started, 1)
    write_json(out, report)
    print_report(report)
    print(f"\nscript wall time: {report['script_wall_s']} s")
    print(f"report: {os.path.relpath(out)}")
    return 0 if report["all_targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
