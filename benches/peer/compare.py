#!/usr/bin/env python3
"""Side-by-side comparison of helpscout-etl and the incumbent Singer pipeline
(tap-helpscout 1.2.2 | target-duckdb 0.8.0) against one simulated Help Scout
account, plus refresh and scaling runs of helpscout-etl.

Modes (combine freely; the speed comparison runs unless --no-speed):
  speed (default)  one simulator, rate limit lifted; `helpscout-etl sync`, then
                   the floor client (crates/floor-client: our sync's exact
                   requests, from the simulator's journal, same concurrency,
                   each body parsed and dropped), then the tap piped into
                   target-duckdb; wall time, CPU, peak RSS, requests per
                   endpoint (simulator /_admin/stats deltas), one table of
                   ours vs the floor vs the incumbent, primary keys per table
                   compared (ours, theirs, the truth).
  --no-incumbent   leave the incumbent out (speed: ours and the floor only;
                   no primary-key comparison; rate-limited: ours only).
  --rate-limited   both again, each against a fresh simulator limited to the
                   plan's 400 requests per (shortened) window; requests made
                   vs the minimum possible (computed from the ground truth),
                   429s received.
  --refresh        a second helpscout-etl sync with no change on the account:
                   requests per endpoint and wall time.
  --scaling LIST   helpscout-etl alone at each size: wall time, peak RSS, RSS
                   growth per 10x.

Peak RSS is the maximum resident set of each measured process as GNU time
(/usr/bin/time -f %M) reports it; without /usr/bin/time it falls back to
os.wait4() on the process, which on Linux is inflated by this script's own
RSS (Python starts children with vfork and the parent's high-water mark is
carried over at exec).  The simulator is not counted.  For the pipeline it is
reported per process (tap, target) and as their sum (they run at the same
time).  The simulator's CPU time during each run is reported too (from /proc),
since it shares the machine's CPUs with the client being measured.

Standard library only.  Virtual environments (created on first use, pinned):
  benches/peer/.venv         tap-helpscout==1.2.2 (shared with run_tap.py)
  benches/peer/.venv-target  target-duckdb==0.8.0 (its own: the tap pins jsonschema 2.6.0)
  benches/peer/.venv-duckdb  duckdb==2.0.0 (reads both DuckDB files)
A JSON report goes to benches/peer/out/compare-<stamp>/report.json (and
out/compare-latest.json).
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, OrderedDict, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_tap  # noqa: E402  (same folder: venv, simulator, catalog helpers)

TARGET_REQUIREMENT = "target-duckdb==0.8.0"
# target-duckdb does not pin DuckDB; pip resolves duckdb 2.0.0 for it today: pin it.
TARGET_EXTRA = ["duckdb==2.0.0"]
DUCKDB_REQUIREMENT = "duckdb==2.0.0"
START_DATE = "2000-01-01T00:00:00Z"
TARGET_SCHEMA = "tap_helpscout"

PKS = OrderedDict((name, list(spec["pk"])) for name, spec in run_tap.STREAMS.items())
# Top-level list endpoints and their page sizes on the simulator (as in the API).
CONV_PAGE = 25
# helpscout-etl's requests in flight when the config says nothing (ClientConfig::new in
# src/api/client.rs); the floor client runs at the same concurrency.
OUR_DEFAULT_CONCURRENCY = 4
REPO = os.path.dirname(os.path.dirname(HERE))
LOADING_RE = re.compile(r"Loading (\d+) rows into '.*\.\"?(\w+)\"?'")
HEADER_BUG = (
    "target-duckdb 0.8.0 loads each batch with COPY ... FROM 'file.csv' without HEADER false: "
    "DuckDB's CSV sniffer takes the first record of the batch for a header, so one row per batch is lost"
)
LIST_PAGE = 50


def log(message):
    sys.stderr.write(f"[compare] {time.strftime('%H:%M:%S')} {message}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------
# environments


def ensure_pinned_venv(venv_dir, requirement, python, extra=()):
    venv_python = os.path.join(venv_dir, "bin", "python")
    name = requirement.split("==")[0]
    marker = os.path.join(venv_dir, f".installed-{requirement.replace('==', '-')}")
    if os.path.exists(venv_python) and os.path.exists(marker):
        return venv_python
    if not os.path.exists(venv_python):
        log(f"creating virtual environment {os.path.relpath(venv_dir, HERE)}")
        subprocess.run([python, "-m", "venv", venv_dir], check=True)
    log(f"installing {requirement} into {os.path.relpath(venv_dir, HERE)}")
    subprocess.run([venv_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement, *extra], check=True)
    with open(marker, "w", encoding="utf-8") as handle:
        handle.write(requirement + "\n")
    return venv_python


def pip_versions(venv_python, packages):
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {'python': sys.version.split()[0]}\n"
        f"for p in {list(packages)!r}:\n"
        "    try: out[p] = m.version(p)\n"
        "    except Exception: out[p] = None\n"
        "print(json.dumps(out))\n"
    )
    probe = subprocess.run([venv_python, "-c", code], capture_output=True, text=True)
    try:
        return json.loads(probe.stdout)
    except ValueError:
        return {}


# --------------------------------------------------------------------------
# simulator


def start_simulator(binary, seed, conversations, extra, log_path, timeout=600):
    sim = run_tap.Simulator(binary, 0, seed, conversations, extra, log_path, timeout)
    SIM_PID[0] = sim.proc.pid
    run_tap.wait_until_up(sim.base_url, timeout)
    return sim


def stats(base):
    return run_tap.normalise_stats(run_tap.http_get_json(base, "/_admin/stats"))


def stats_delta(before, after):
    """Per 'METHOD endpoint' request counts, per status, and 429s between two snapshots."""
    by_endpoint = Counter()
    by_status = Counter()
    full = Counter()
    for key, value in after.items():
        if not isinstance(value, (int, float)) or key in ("total", "rate_limited", "faults_injected"):
            continue
        diff = value - (before.get(key) or 0)
        if not diff:
            continue
        parts = key.rsplit(" ", 1)
        endpoint, status = (parts[0], parts[1]) if len(parts) == 2 and parts[1].isdigit() else (key, "?")
        by_endpoint[endpoint] += diff
        by_status[status] += diff
        full[key] += diff
    total = sum(by_endpoint.values())
    token = sum(v for k, v in by_endpoint.items() if k.endswith("/oauth2/token"))
    return OrderedDict(
        total=total,
        api_requests=total - token,
        token_requests=token,
        rate_limited_429=by_status.get("429", 0),
        by_status=dict(sorted(by_status.items())),
        by_endpoint=dict(sorted(by_endpoint.items())),
        by_endpoint_status=dict(sorted(full.items())),
    )


def minimum_requests(truth):
    """The fewest API requests a full extraction of this account can make.

    Top-level lists: ceil(rows / page size) pages, at least 1 (conversations
    with embed=threads: 25 a page; every other list and the report: 50).
    Children: one list per parent, ceil(children / 50) pages, at least 1.
    Threads: a conversation's embedded threads are complete except for chats,
    which embed only their 3 newest; each chat with more than 3 threads needs
    ceil(threads / 50) pages of /conversations/{id}/threads.
    The token endpoint is not rate-limited and not counted.
    """
    tables = truth["tables"]

    def pages(n, size):
        return max(1, math.ceil(n / size))

    threads_per_conv = Counter(r["conversation_id"] for r in tables["conversation_threads"])
    fields = Counter(r["mailbox_id"] for r in tables["mailbox_fields"])
    folders = Counter(r["mailbox_id"] for r in tables["mailbox_folders"])
    members = Counter(r["team_id"] for r in tables["team_members"])
    chats = [c for c in tables["conversations"] if c.get("type") == "chat" and threads_per_conv[c["id"]] > 3]
    parts = OrderedDict()
    parts["GET /v2/conversations"] = pages(len(tables["conversations"]), CONV_PAGE)
    parts["GET /v2/conversations/{id}/threads"] = sum(pages(threads_per_conv[c["id"]], LIST_PAGE) for c in chats)
    parts["GET /v2/customers"] = pages(len(tables["customers"]), LIST_PAGE)
    parts["GET /v2/reports/happiness/ratings"] = pages(len(tables["happiness_ratings_report"]), LIST_PAGE)
    parts["GET /v2/mailboxes"] = pages(len(tables["mailboxes"]), LIST_PAGE)
    parts["GET /v2/mailboxes/{id}/fields"] = sum(pages(fields[m["id"]], LIST_PAGE) for m in tables["mailboxes"])
    parts["GET /v2/mailboxes/{id}/folders"] = sum(pages(folders[m["id"]], LIST_PAGE) for m in tables["mailboxes"])
    parts["GET /v2/teams"] = pages(len(tables["teams"]), LIST_PAGE)
    parts["GET /v2/teams/{id}/members"] = sum(pages(members[t["id"]], LIST_PAGE) for t in tables["teams"])
    parts["GET /v2/users"] = pages(len(tables["users"]), LIST_PAGE)
    parts["GET /v2/workflows"] = pages(len(tables["workflows"]), LIST_PAGE)
    return OrderedDict(total=sum(parts.values()), by_endpoint=parts, chats_with_more_than_3_threads=len(chats))


def refresh_allowance(truth):
    """At most one request per list endpoint, plus one per parent for children."""
    tables = truth["tables"]
    top = 7  # conversations, customers, report, mailboxes, teams, users, workflows
    return top + 2 * len(tables["mailboxes"]) + len(tables["teams"])


# --------------------------------------------------------------------------
# processes


TIME_BIN = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SIM_PID = [None]  # the simulator being measured against (its CPU time is reported too)


def timed(cmd, time_file):
    """Wrap a command in GNU time (max RSS, CPU) when it is installed.

    Why not os.wait4() alone: Python starts children with vfork(), and Linux
    carries the RSS high-water mark of the parent's address space into the
    child's ru_maxrss at exec, so a child of a big Python process reports at
    least the parent's RSS.  GNU time fork()s from a small process.
    """
    if TIME_BIN is None:
        return cmd
    return [TIME_BIN, "-f", "%M %U %S", "-o", time_file] + list(cmd)


def kill_group(proc):
    """Stop a measured process and what it started (GNU time's child): own session, own group."""
    try:
        os.killpg(proc.pid, 9)
    except OSError:
        proc.kill()


def sim_cpu_s():
    pid = SIM_PID[0]
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, ValueError, IndexError, TypeError):
        return None


def wait_rusage(proc, started, result, key, time_file=None):
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    entry = OrderedDict(
        exit_code=proc.returncode,
        wall_s=round(time.perf_counter() - started, 3),
        user_s=round(usage.ru_utime, 3),
        sys_s=round(usage.ru_stime, 3),
        max_rss_mib=round(usage.ru_maxrss / 1024.0, 1),
        rss_source="os.wait4 (may include the parent's RSS, see timed())",
    )
    if time_file and os.path.exists(time_file):
        with open(time_file, encoding="utf-8", errors="replace") as handle:
            lines = [l for l in handle.read().splitlines() if l.strip()]
        try:
            rss_kib, user, sys_ = lines[-1].split()
            entry.update(user_s=float(user), sys_s=float(sys_), max_rss_mib=round(int(rss_kib) / 1024.0, 1), rss_source="GNU time %M")
        except (ValueError, IndexError):
            pass
    result[key] = entry


def run_measured(cmd, stdout_path, stderr_path, timeout, env=None):
    time_file = stderr_path + ".time"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        cpu0 = sim_cpu_s()
        started = time.perf_counter()
        proc = subprocess.Popen(
            timed(cmd, time_file), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
        result = {}
        waiter = threading.Thread(target=wait_rusage, args=(proc, started, result, "p", time_file), daemon=True)
        waiter.start()
        waiter.join(timeout)
        if waiter.is_alive():
            log(f"timeout after {timeout}s, stopping pid {proc.pid} and its children")
            kill_group(proc)
            waiter.join()
            result["p"]["exit_code"] = 124
    cpu1 = sim_cpu_s()
    if cpu0 is not None and cpu1 is not None:
        result["p"]["simulator_cpu_s"] = round(cpu1 - cpu0, 2)
    if os.path.exists(time_file):
        os.unlink(time_file)
    return result["p"]


def write_our_config(path, base, out_dir, rate_limit, window_secs, concurrency=None):
    lines = [
        f'start_date = "{START_DATE}"',
        "[helpscout]",
        f'base_url = "{base}/v2"',
        f'token_url = "{base}/v2/oauth2/token"',
        'client_id = "demo-client-id"',
        'client_secret = "demo-client-secret"',
        f"rate_limit_per_minute = {rate_limit}",
    ]
    if window_secs is not None:
        lines.append(f"rate_window_secs = {window_secs}")
    if concurrency is not None:
        lines.append(f"concurrency = {concurrency}")
    lines += ["[output]", f'dir = "{out_dir}"']
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def run_ours(binary, base, work, label, run_dir, rate_limit, window_secs, timeout, out_dir=None, concurrency=None):
    """One `helpscout-etl sync --json`; returns measurements and the run report."""
    out_dir = out_dir or os.path.join(work, f"ours-{label}")
    config = os.path.join(work, f"ours-{label}.toml")
    write_our_config(config, base, out_dir, rate_limit, window_secs, concurrency)
    before = stats(base)
    log(f"helpscout-etl sync ({label})")
    m = run_measured(
        [binary, "sync", "--config", config, "--json"],
        os.path.join(run_dir, f"ours-{label}.json"),
        os.path.join(run_dir, f"ours-{label}.log"),
        timeout,
        env=dict(os.environ, HELPSCOUT_ETL_LOG=os.environ.get("HELPSCOUT_ETL_LOG", "warn")),
    )
    after = stats(base)
    try:
        with open(os.path.join(run_dir, f"ours-{label}.json"), encoding="utf-8") as handle:
            report = json.load(handle)
    except ValueError:
        report = None
    result = OrderedDict(m)
    result["requests"] = stats_delta(before, after)
    if report:
        result["status"] = report.get("status")
        result["reported_requests"] = report.get("requests")
        result["reported_rate_limited"] = report.get("rate_limited")
        result["commits"] = report.get("commits")
        result["longest_commit_window_ms"] = report.get("longest_commit_window_ms")
        result["parquet_partitions_written"] = report.get("parquet_partitions_written")
        result["tables"] = OrderedDict(
            (t["table"], OrderedDict(rows=t.get("rows"), requests=t.get("requests"), duration_ms=t.get("duration_ms"), status=t.get("status")))
            for t in report.get("tables", [])
        )
    result["duckdb"] = os.path.join(out_dir, "helpscout.duckdb")
    log(f"  {label}: exit {m['exit_code']}, {m['wall_s']} s, {m['max_rss_mib']} MiB, {result['requests']['total']} requests")
    return result


def reset_stats(base):
    """Clears the simulator's counters and its request journal."""
    request = urllib.request.Request(base.rstrip("/") + "/_admin/stats/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30):
        pass


def request_journal(base, required=True):
    """Every API GET's path and query since the last reset, in order of arrival (None from an
    older simulator without a journal, unless required)."""
    try:
        return run_tap.http_get_json(base, "/_admin/requests", timeout=600)
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        if not required:
            return None
        raise RuntimeError("this simulator has no request journal (GET /_admin/requests answers 404): "
                           "rebuild helpscout-etl, or name a newer simulator with --sim-bin") from None


def build_floor():
    """`cargo build -p helpscout-floor` (the dev profile is optimised); returns the binary's path."""
    log("cargo build -p helpscout-floor")
    proc = subprocess.run(
        ["cargo", "build", "-p", "helpscout-floor", "--message-format=json-render-diagnostics"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError("cargo build -p helpscout-floor failed (its messages are above)")
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["target"]["name"] == "helpscout-floor":
            return msg["executable"]
    raise RuntimeError("cargo built helpscout-floor but named no executable")


def journal_check(journal, requests):
    """Does the journal hold exactly the GETs the stats counted?"""
    gets = sum(v for k, v in requests["by_endpoint"].items() if k.startswith("GET "))
    return OrderedDict(
        journal_requests=len(journal),
        stats_total_minus_token=requests["total"] - requests["token_requests"],
        stats_gets=gets,
        equal=len(journal) == gets == requests["total"] - requests["token_requests"],
    )


def run_floor(floor_bin, base, requests_file, concurrency, label, run_dir, timeout, ours_journal):
    """The floor client over our sync's journal; returns measurements, its summary and checks."""
    reset_stats(base)
    before = stats(base)
    log(f"floor client ({label}, {len(ours_journal)} requests, concurrency {concurrency})")
    out_path = os.path.join(run_dir, f"floor-{label}.json")
    m = run_measured(
        [floor_bin, "--base", base, "--requests", requests_file, "--concurrency", str(concurrency),
         "--client-id", "demo-client-id", "--client-secret", "demo-client-secret"],
        out_path,
        os.path.join(run_dir, f"floor-{label}.log"),
        timeout,
    )
    after = stats(base)
    journal = request_journal(base)
    result = OrderedDict(m)
    result["concurrency"] = concurrency
    result["requests"] = stats_delta(before, after)
    try:
        with open(out_path, encoding="utf-8") as handle:
            result["summary"] = json.loads(handle.read().strip().splitlines()[-1])
    except (ValueError, IndexError):
        result["summary"] = None
    result["journal"] = journal_check(journal, result["requests"])
    result["same_requests_as_ours"] = Counter(journal) == Counter(ours_journal)
    result["same_order_as_ours"] = journal == ours_journal
    if m["exit_code"] != 0:
        with open(os.path.join(run_dir, f"floor-{label}.log"), encoding="utf-8", errors="replace") as handle:
            tail = handle.read().strip().splitlines()[-1:] or [""]
        raise RuntimeError(f"the floor client failed (exit {m['exit_code']}): {tail[0]}")
    log(f"  floor: {m['wall_s']} s, {round(m['user_s'] + m['sys_s'], 2)} s CPU, {m['max_rss_mib']} MiB, "
        f"{result['requests']['api_requests']} requests, same as ours: {result['same_requests_as_ours']}")
    return result


def floor_table(ours, floor, theirs):
    """Ours vs the floor vs the incumbent: one table, with the ratios."""
    def row(name, e, cpu, rss):
        return OrderedDict(who=name, wall_s=e["wall_s"], cpu_s=round(cpu, 2), peak_rss_mib=rss, requests=e["requests"]["api_requests"])

    def cpu(e):
        return e["user_s"] + e["sys_s"]

    rows = [row("helpscout-etl sync", ours, cpu(ours), ours["max_rss_mib"])]
    if floor:
        rows.append(row("floor client", floor, cpu(floor), floor["max_rss_mib"]))
    if theirs:
        rows.append(row("incumbent (tap | target)", theirs, cpu(theirs["tap"]) + cpu(theirs["target"]), theirs["max_rss_mib_sum"]))
    ratios = OrderedDict(
        ours_over_floor_cpu=ratio(cpu(ours), cpu(floor)) if floor else None,
        ours_over_floor_wall=ratio(ours["wall_s"], floor["wall_s"]) if floor else None,
        incumbent_over_ours_wall=ratio(theirs["wall_s"], ours["wall_s"]) if theirs else None,
    )
    return OrderedDict(
        columns=["who", "wall_s", "cpu_s", "peak_rss_mib", "requests"],
        rows=rows,
        ratios=ratios,
        note="CPU is user+sys of the measured processes (the incumbent: tap + target); peak RSS of the "
             "incumbent is the sum of both; requests are API requests the simulator counted (token excluded)",
    )


def run_incumbent(venvs, base, work, label, run_dir, streams, timeout):
    """tap-helpscout (discovery, then sync) piped into target-duckdb."""
    tap_python, target_python = venvs
    cfg_dir = os.path.join(work, f"theirs-{label}")
    os.makedirs(cfg_dir, exist_ok=True)
    tap_config = os.path.join(cfg_dir, "tap-config.json")
    with open(tap_config, "w", encoding="utf-8") as handle:
        json.dump(
            {
                "client_id": "demo-client-id",
                "client_secret": "demo-client-secret",
                "refresh_token": "demo-refresh-token",
                "user_agent": "helpscout-etl peer comparison (tap-helpscout 1.2.2)",
                "start_date": START_DATE,
            },
            handle,
        )
    db_path = os.path.join(cfg_dir, "target.duckdb")
    target_config = os.path.join(cfg_dir, "target-config.json")
    with open(target_config, "w", encoding="utf-8") as handle:
        json.dump({"path": db_path, "default_target_schema": TARGET_SCHEMA, "temp_dir": cfg_dir}, handle)
    wrapper = [tap_python, os.path.join(HERE, "tap_wrapper.py"), "--sim-base", base, "--"]
    before = stats(base)
    log(f"tap-helpscout --discover ({label})")
    disc = run_measured(
        wrapper + ["--discover", "-c", tap_config],
        os.path.join(cfg_dir, "discovered.json"),
        os.path.join(run_dir, f"theirs-{label}-discover.log"),
        timeout,
    )
    if disc["exit_code"] != 0:
        raise RuntimeError(f"tap discovery failed, see theirs-{label}-discover.log")
    with open(os.path.join(cfg_dir, "discovered.json"), encoding="utf-8") as handle:
        catalog = run_tap.select_everything(json.load(handle), streams)
    catalog_path = os.path.join(cfg_dir, "catalog.json")
    with open(catalog_path, "w", encoding="utf-8") as handle:
        json.dump(catalog, handle)
    mid = stats(base)

    log(f"tap-helpscout | target-duckdb ({label}, {len(streams)} streams)")
    tap_log = os.path.join(run_dir, f"theirs-{label}-tap.log")
    target_log = os.path.join(run_dir, f"theirs-{label}-target.log")
    result = {}
    with open(tap_log, "wb") as tap_err, open(target_log, "wb") as tgt_err, open(
        os.path.join(cfg_dir, "target-state.jsonl"), "wb"
    ) as tgt_out:
        tap_time, target_time = os.path.join(cfg_dir, "tap.time"), os.path.join(cfg_dir, "target.time")
        cpu0 = sim_cpu_s()
        started = time.perf_counter()
        tap = subprocess.Popen(
            timed(wrapper + ["-c", tap_config, "--catalog", catalog_path], tap_time), stdout=subprocess.PIPE, stderr=tap_err, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        target = subprocess.Popen(
            timed([os.path.join(os.path.dirname(target_python), "target-duckdb"), "-c", target_config], target_time),
            stdin=tap.stdout,
            stdout=tgt_out,
            stderr=tgt_err,
            start_new_session=True,
        )
        tap.stdout.close()
        waiters = [
            threading.Thread(target=wait_rusage, args=(tap, started, result, "tap", tap_time), daemon=True),
            threading.Thread(target=wait_rusage, args=(target, started, result, "target", target_time), daemon=True),
        ]
        for w in waiters:
            w.start()
        deadline = time.monotonic() + timeout
        for w in waiters:
            w.join(max(0.0, deadline - time.monotonic()))
        timed_out = any(w.is_alive() for w in waiters)
        if timed_out:
            log(f"pipeline timeout after {timeout}s, stopping pids {tap.pid} {target.pid}")
            for p in (tap, target):
                if p.returncode is None:
                    kill_group(p)
            for w in waiters:
                w.join()
        wall = time.perf_counter() - started
    cpu1 = sim_cpu_s()
    after = stats(base)
    mailbox_order = []
    with open(tap_log, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            match = run_tap.CHILD_LOG_RE.search(line)
            if match and match.group(1) == "mailbox_folders":
                mailbox_order.append(int(match.group(3)))
    batches = Counter()
    loaded = Counter()
    with open(target_log, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            match = LOADING_RE.search(line)
            if match:
                batches[match.group(2)] += 1
                loaded[match.group(2)] += int(match.group(1))
    out = OrderedDict(
        exit_code=124 if timed_out else (result["tap"]["exit_code"] or result["target"]["exit_code"]),
        wall_s=round(wall, 3),
        discover_wall_s=disc["wall_s"],
        simulator_cpu_s=round(cpu1 - cpu0, 2) if cpu0 is not None and cpu1 is not None else None,
        max_rss_mib_sum=round(result["tap"]["max_rss_mib"] + result["target"]["max_rss_mib"], 1),
        tap=result["tap"],
        target=result["target"],
        selected_streams=streams,
        requests=stats_delta(mid, after),
        discovery_requests=stats_delta(before, mid),
        duckdb=db_path,
        folder_mailbox_order=mailbox_order,
        target_batches=dict(batches),
        target_rows_loaded=dict(loaded),
    )
    log(
        f"  {label}: tap exit {result['tap']['exit_code']}, target exit {result['target']['exit_code']}, {out['wall_s']} s, "
        f"RSS tap {result['tap']['max_rss_mib']} + target {result['target']['max_rss_mib']} MiB, {out['requests']['total']} requests"
    )
    return out


# --------------------------------------------------------------------------
# primary keys


def dump_pks(duckdb_python, db_path, work, name):
    spec = os.path.join(work, "pk-spec.json")
    with open(spec, "w", encoding="utf-8") as handle:
        json.dump(PKS, handle)
    out = os.path.join(work, f"pks-{name}.json")
    proc = subprocess.run([duckdb_python, os.path.join(HERE, "pk_dump.py"), db_path, spec, out], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pk_dump failed on {name}: {proc.stderr[-2000:]}")
    with open(out, encoding="utf-8") as handle:
        return json.load(handle)


def render_truth_key(value):
    if isinstance(value, bool) or value is None:
        return "<null>" if value is None else str(value).lower()
    if isinstance(value, (int, float)):
        return str(int(value))
    parsed = run_tap.parse_ts(value) if isinstance(value, str) else None
    if parsed is not None:
        return parsed.strftime("%Y-%m-%dT%H:%M:%S")
    return str(value)


def truth_keys(truth):
    out = {}
    for table, pk in PKS.items():
        rows = truth["tables"].get(table, [])
        out[table] = {"|".join(render_truth_key(r.get(c)) for c in pk) for r in rows}
    return out


def explain(table, missing, theirs_selected, predicted_folders, batches):
    """Attribute the keys the incumbent lacks (vs the truth) to its known bugs."""
    if not theirs_selected:
        return "not loaded: deselected for target-duckdb 0.8.0, which crashes on this stream (all columns are keys, empty UPDATE)"
    missing = set(missing)
    reasons = []
    if table == "mailbox_folders" and predicted_folders:
        hit = missing & predicted_folders
        if hit:
            reasons.append(f"{len(hit)} by flaw 4 (one mailbox_folders bookmark shared by all mailboxes; "
                           f"{len(predicted_folders)} predicted from the tap's mailbox order)")
        missing -= predicted_folders
    if missing and len(missing) <= batches:
        reasons.append(f"{len(missing)} by the target's first-row-as-header loss ({batches} batch(es))")
        missing = set()
    if missing:
        reasons.append(f"{len(missing)} UNEXPLAINED")
    return "; ".join(reasons)


def compare_pks(ours, theirs, truth, theirs_streams, folder_order, batches):
    tkeys = truth_keys(truth) if truth else {}
    predicted = None
    if truth and folder_order:
        start = run_tap.parse_ts(START_DATE)
        dropped = run_tap.predict_folder_drops(truth["tables"]["mailbox_folders"], folder_order, start)
        predicted = {str(k[0]) for k in dropped}
    rows = OrderedDict()
    for table in PKS:
        o = ours.get(table) or {}
        t = theirs.get(table) or {}
        okeys, tk = set(o.get("keys", [])), set(t.get("keys", []))
        truth_set = tkeys.get(table)
        entry = OrderedDict(
            ours_rows=o.get("rows"),
            theirs_rows=t.get("rows") if theirs.get(table) else None,
            truth_rows=len(truth_set) if truth_set is not None else None,
            same_keys=okeys == tk,
            only_ours=len(okeys - tk),
            only_theirs=len(tk - okeys),
            ours_equals_truth=(okeys == truth_set) if truth_set is not None else None,
            theirs_missing_vs_truth=len(truth_set - tk) if truth_set is not None else None,
            theirs_extra_vs_truth=len(tk - truth_set) if truth_set is not None else None,
            example_only_ours=sorted(okeys - tk)[:3],
            example_only_theirs=sorted(tk - okeys)[:3],
        )
        if truth_set is not None:
            entry["ours_missing_vs_truth"] = len(truth_set - okeys)
            entry["ours_extra_vs_truth"] = len(okeys - truth_set)
        missing_theirs = sorted(truth_set - tk) if truth_set is not None else sorted(okeys - tk)
        entry["explanation"] = "" if entry["same_keys"] else explain(table, missing_theirs, table in theirs_streams, predicted, batches.get(table, 0))
        if entry["only_theirs"] and not entry["explanation"]:
            entry["explanation"] = "UNEXPLAINED (keys only the incumbent has)"
        rows[table] = entry
    return rows


# --------------------------------------------------------------------------
# printing


def table(headers, rows):
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 or i == len(widths) - 1 and not c.replace(".", "").isdigit() else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def print_summary(report):
    out = []
    sp = report.get("speed")
    if sp:
        o, t = sp["ours"], sp.get("theirs")
        out.append(f"\n== speed: {sp['conversations']} conversations, seed {sp['seed']}, rate limit lifted ==")
        rows = [["helpscout-etl sync", o["wall_s"], round(o["user_s"] + o["sys_s"], 1), o.get("simulator_cpu_s"), o["max_rss_mib"], o["requests"]["api_requests"], o["requests"]["token_requests"], o["requests"]["rate_limited_429"]]]
        if t:
            rows.append([
                "tap | target (sum RSS)",
                t["wall_s"],
                f"{round(t['tap']['user_s'] + t['tap']['sys_s'], 1)}+{round(t['target']['user_s'] + t['target']['sys_s'], 1)}",
                t.get("simulator_cpu_s"),
                f"{t['max_rss_mib_sum']} ({t['tap']['max_rss_mib']}+{t['target']['max_rss_mib']})",
                t["requests"]["api_requests"],
                t["requests"]["token_requests"] + t["discovery_requests"]["token_requests"],
                t["requests"]["rate_limited_429"],
            ])
        out.append(table(["", "wall s", "CPU user+sys s", "simulator CPU s", "peak RSS MiB", "API requests", "token", "429s"], rows))
        if t:
            out.append(f"speed-up (their wall / ours): {sp['speedup']}x (target >= 25x)")
        ft = sp.get("floor_table")
        if ft and (sp.get("floor") or t):
            out.append(f"\n== against the floor (our sync's own requests, concurrency {sp.get('concurrency')}, each body parsed and dropped) ==")
            out.append(table(["", "wall s", "CPU s", "peak RSS MiB", "requests"],
                             [[r["who"], r["wall_s"], r["cpu_s"], r["peak_rss_mib"], r["requests"]] for r in ft["rows"]]))
            q = ft["ratios"]
            parts = []
            if q["ours_over_floor_cpu"] is not None:
                parts.append(f"ours / floor: CPU {q['ours_over_floor_cpu']}x, wall {q['ours_over_floor_wall']}x")
            if q["incumbent_over_ours_wall"] is not None:
                parts.append(f"incumbent / ours: wall {q['incumbent_over_ours_wall']}x")
            out.append("; ".join(parts))
            f = sp.get("floor")
            if f:
                out.append(f"journal: {o['journal']['journal_requests']} requests of ours (stats: {o['journal']['stats_total_minus_token']} "
                           f"without the token), floor made {f['requests']['api_requests']}, same requests: "
                           f"{'yes' if f['same_requests_as_ours'] else 'NO'}, same order: {'yes' if f['same_order_as_ours'] else 'no'}")
        if t:
            eps = sorted(set(o["requests"]["by_endpoint"]) | set(t["requests"]["by_endpoint"]))
            out.append("\nrequests by endpoint")
            out.append(table(["endpoint", "ours", "theirs"], [[e, o["requests"]["by_endpoint"].get(e, 0), t["requests"]["by_endpoint"].get(e, 0)] for e in eps]))
        if sp.get("pks"):
            out.append("\nprimary keys per table")
            out.append(
                table(
                    ["table", "ours", "theirs", "truth", "same", "only ours", "only theirs", "ours=truth", "why"],
                    [
                        [n, e["ours_rows"], e["theirs_rows"], e["truth_rows"], "yes" if e["same_keys"] else "no", e["only_ours"], e["only_theirs"],
                         "yes" if e["ours_equals_truth"] else "no", e["explanation"]]
                        for n, e in sp["pks"].items()
                    ],
                )
            )
    rl = report.get("rate_limited")
    if rl:
        out.append(f"\n== rate-limited: {rl['conversations']} conversations, {rl['limit']} requests / {rl['window_secs']} s window ==")
        rows = []
        for who in ("ours", "theirs"):
            e = rl.get(who)
            if not e:
                continue
            rows.append([who, e["wall_s"], e["requests"]["api_requests"], rl["minimum"]["total"], ratio(e["requests"]["api_requests"], rl["minimum"]["total"]), e["requests"]["rate_limited_429"]])
        out.append(table(["", "wall s", "API requests", "minimum", "x minimum", "429s"], rows))
        out.append("minimum by endpoint: " + ", ".join(f"{k.split(' ', 1)[1]} {v}" for k, v in rl["minimum"]["by_endpoint"].items()))
        out.append(f"floor at the limit: {rl['floor_wall_s']} s for the minimum number of requests")
    rf = report.get("refresh")
    if rf:
        out.append(f"\n== refresh (second sync, no change): {rf['wall_s']} s, {rf['requests']['api_requests']} API requests "
                   f"(allowance {rf['allowance']}: one per list + one per parent), exit {rf['exit_code']} ==")
        out.append(table(["endpoint", "requests"], [[k, v] for k, v in rf["requests"]["by_endpoint"].items()]))
    sc = report.get("scaling")
    if sc:
        out.append("\n== scaling: helpscout-etl sync alone, rate limit lifted ==")
        out.append(
            table(
                ["conversations", "wall s", "peak RSS MiB", "RSS growth vs previous", "API requests", "rows", "exit"],
                [[s["conversations"], s["wall_s"], s["max_rss_mib"], s.get("rss_growth_vs_previous"), s["requests"]["api_requests"], s.get("rows_total"), s["exit_code"]] for s in sc["runs"]],
            )
        )
        if sc.get("rss_growth_per_10x"):
            out.append(f"RSS growth per 10x: {sc['rss_growth_per_10x']} (target < 1.5x)")
    print("\n".join(out))


# --------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.environ.get("HELPSCOUT_ETL_BIN"), help="helpscout-etl binary (default $HELPSCOUT_ETL_BIN)")
    parser.add_argument("--sim-bin", help="the binary whose `simulate` serves the account (default --bin)")
    parser.add_argument("--conversations", type=int, default=20000, help="account size (default 20000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-speed", action="store_true", help="skip the speed comparison")
    parser.add_argument("--no-pks", action="store_true", help="skip the primary-key comparison")
    parser.add_argument("--no-incumbent", action="store_true",
                        help="leave the incumbent out (about 80 s at 20,000 conversations): speed runs ours and the floor only")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor client in the speed comparison")
    parser.add_argument("--floor-bin", help="the floor client binary (default: built with `cargo build -p helpscout-floor`)")
    parser.add_argument("--concurrency", type=int,
                        help=f"requests in flight, for our sync (written to its config) and the floor "
                             f"(default: helpscout-etl's own, {OUR_DEFAULT_CONCURRENCY})")
    parser.add_argument("--rate-limited", action="store_true", help="also compare both under the plan's rate limit")
    parser.add_argument("--rate-limited-conversations", type=int, help="account size of the rate-limited runs (default --conversations)")
    parser.add_argument("--limit", type=int, default=400, help="requests per window in --rate-limited (default 400, the Plus plan)")
    parser.add_argument("--window-secs", type=int, default=6, help="the simulator's shortened window in --rate-limited (default 6)")
    parser.add_argument("--refresh", action="store_true", help="also run a second sync with no change")
    parser.add_argument("--scaling", help="comma list of sizes for helpscout-etl alone, e.g. 2000,20000,200000")
    parser.add_argument("--with-team-members", action="store_true", help="keep team_members selected for the target (it crashes on it)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per measured process")
    parser.add_argument("--keep", action="store_true", help="keep the temporary outputs (DuckDB files, configs)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    args = parser.parse_args()
    if not args.bin:
        parser.error("give --bin or $HELPSCOUT_ETL_BIN")
    binary = os.path.abspath(os.path.expanduser(args.bin))
    if not os.access(binary, os.X_OK):
        parser.error(f"not an executable: {binary}")
    sim_binary = os.path.abspath(os.path.expanduser(args.sim_bin)) if args.sim_bin else binary
    if not os.access(sim_binary, os.X_OK):
        parser.error(f"not an executable: {sim_binary}")
    sizes = [int(s) for s in args.scaling.split(",") if s.strip()] if args.scaling else []
    if args.concurrency is not None and args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    concurrency = args.concurrency or OUR_DEFAULT_CONCURRENCY
    floor_bin = None
    if not args.no_speed and not args.no_floor:
        if args.floor_bin:
            floor_bin = os.path.abspath(os.path.expanduser(args.floor_bin))
            if not os.access(floor_bin, os.X_OK):
                parser.error(f"not an executable: {floor_bin}")
        else:
            floor_bin = build_floor()

    need_incumbent = (not args.no_speed or args.rate_limited) and not args.no_incumbent
    need_duckdb = not args.no_speed and not args.no_pks and not args.no_incumbent
    tap_python = target_python = duckdb_python = None
    versions = OrderedDict()
    if need_incumbent:
        tap_python = run_tap.ensure_venv(os.path.join(HERE, ".venv"), args.python)
        target_python = ensure_pinned_venv(os.path.join(HERE, ".venv-target"), TARGET_REQUIREMENT, args.python, TARGET_EXTRA)
        versions["tap_venv"] = pip_versions(tap_python, ["tap-helpscout", "singer-python", "requests", "jsonschema", "backoff"])
        versions["target_venv"] = pip_versions(target_python, ["target-duckdb", "duckdb", "jsonschema"])
    if need_duckdb:
        duckdb_python = ensure_pinned_venv(os.path.join(HERE, ".venv-duckdb"), DUCKDB_REQUIREMENT, args.python)
        versions["reader_venv"] = pip_versions(duckdb_python, ["duckdb"])
    git = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    versions["helpscout-etl"] = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    versions["git_commit"] = git

    streams = [s for s in run_tap.STREAMS if args.with_team_members or s != "team_members"]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir = os.path.join(args.out, f"compare-{stamp}")
    os.makedirs(run_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="helpscout-compare-")
    report = OrderedDict(
        started_at=stamp,
        machine=OrderedDict(cpus=os.cpu_count(), note="loopback simulator; the CPUs may be shared with other work: compare ratios"),
        rss_method=("GNU time (/usr/bin/time -f %M) around each measured process" if TIME_BIN else
                    "os.wait4() ru_maxrss of each process (inflated by this script's own RSS: vfork)"),
        versions=versions,
        options=vars(args),
    )
    sims = []

    def save():
        path = os.path.join(run_dir, "report.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2, default=str)
        shutil.copy(path, os.path.join(args.out, "compare-latest.json"))

    try:
        ours_full = None
        if not args.no_speed:
            sim = start_simulator(sim_binary, args.seed, args.conversations, ["--rate-limit", "1000000"], os.path.join(run_dir, "sim-speed.log"))
            sims.append(sim)
            truth = run_tap.http_get_json(sim.base_url, "/_admin/truth", timeout=600)
            # The journal then holds our sync's requests alone.
            reset_stats(sim.base_url)
            ours = run_ours(binary, sim.base_url, work, "speed", run_dir, 1000000, None, args.timeout, concurrency=args.concurrency)
            ours_full = (sim, ours)
            ours_journal = request_journal(sim.base_url, required=floor_bin is not None)
            journal_path = os.path.join(run_dir, "requests-speed.json")
            if ours_journal is not None:
                with open(journal_path, "w", encoding="utf-8") as handle:
                    json.dump(ours_journal, handle)
                ours["journal"] = journal_check(ours_journal, ours["requests"])
                ours["journal"]["file"] = os.path.relpath(journal_path, run_dir)
            floor = None
            if floor_bin:
                floor = run_floor(floor_bin, sim.base_url, journal_path, concurrency, "speed", run_dir, args.timeout, ours_journal)
            theirs = None
            if need_incumbent:
                theirs = run_incumbent((tap_python, target_python), sim.base_url, work, "speed", run_dir, streams, args.timeout)
            sp = OrderedDict(
                conversations=args.conversations,
                seed=args.seed,
                concurrency=concurrency,
                ours=ours,
                floor=floor,
                theirs=theirs,
                speedup=ratio(theirs["wall_s"], ours["wall_s"]) if theirs else None,
                rss_ratio_theirs_sum_over_ours=ratio(theirs["max_rss_mib_sum"], ours["max_rss_mib"]) if theirs else None,
                floor_table=floor_table(ours, floor, theirs),
                truth_rows={k: len(v) for k, v in truth["tables"].items()},
            )
            report["speed"] = sp
            save()
            if need_duckdb:
                log("reading primary keys from both DuckDB files")
                pk_ours = dump_pks(duckdb_python, ours["duckdb"], work, "ours")
                pk_theirs = dump_pks(duckdb_python, theirs["duckdb"], work, "theirs")
                sp["pks"] = compare_pks(pk_ours, pk_theirs, truth, streams, theirs["folder_mailbox_order"], theirs["target_batches"])
                sp["target_first_row_loss"] = HEADER_BUG
                sp["pk_duplicates"] = {
                    "ours": {k: v.get("duplicate_keys") for k, v in pk_ours.items() if v},
                    "theirs": {k: v.get("duplicate_keys") for k, v in pk_theirs.items() if v},
                }
            save()

        if args.refresh:
            if ours_full is None:
                sim = start_simulator(sim_binary, args.seed, args.conversations, ["--rate-limit", "1000000"], os.path.join(run_dir, "sim-refresh.log"))
                sims.append(sim)
                first = run_ours(binary, sim.base_url, work, "full", run_dir, 1000000, None, args.timeout, concurrency=args.concurrency)
                ours_full = (sim, first)
            sim, first = ours_full
            truth = run_tap.http_get_json(sim.base_url, "/_admin/truth", timeout=600)
            second = run_ours(binary, sim.base_url, work, "refresh", run_dir, 1000000, None, args.timeout, out_dir=os.path.dirname(first["duckdb"]),
                              concurrency=args.concurrency)
            second["allowance"] = refresh_allowance(truth)
            second["within_allowance"] = second["requests"]["api_requests"] <= second["allowance"]
            report["refresh"] = second
            save()

        if args.rate_limited:
            n = args.rate_limited_conversations or args.conversations
            extra = ["--rate-limit", str(args.limit), "--rate-window-secs", str(args.window_secs)]
            rl = OrderedDict(conversations=n, seed=args.seed, limit=args.limit, window_secs=args.window_secs)
            for who in ("ours",) if args.no_incumbent else ("ours", "theirs"):
                sim = start_simulator(sim_binary, args.seed, n, extra, os.path.join(run_dir, f"sim-rate-{who}.log"))
                sims.append(sim)
                if "minimum" not in rl:
                    truth = run_tap.http_get_json(sim.base_url, "/_admin/truth", timeout=600)
                    rl["minimum"] = minimum_requests(truth)
                    rl["minimum_method"] = minimum_requests.__doc__.strip()
                    rl["floor_wall_s"] = round(math.ceil(rl["minimum"]["total"] / args.limit - 1) * args.window_secs, 1)
                if who == "ours":
                    rl["ours"] = run_ours(binary, sim.base_url, work, "rate", run_dir, args.limit, args.window_secs, args.timeout,
                                          concurrency=args.concurrency)
                else:
                    rl["theirs"] = run_incumbent((tap_python, target_python), sim.base_url, work, "rate", run_dir, streams, args.timeout)
                e = rl[who]
                e["x_minimum"] = ratio(e["requests"]["api_requests"], rl["minimum"]["total"])
                sim.stop()
                sims.remove(sim)
                report["rate_limited"] = rl
                save()

        if sizes:
            runs = []
            for n in sizes:
                sim = start_simulator(sim_binary, args.seed, n, ["--rate-limit", "1000000"], os.path.join(run_dir, f"sim-scale-{n}.log"))
                sims.append(sim)
                r = run_ours(binary, sim.base_url, work, f"scale-{n}", run_dir, 1000000, None, args.timeout, concurrency=args.concurrency)
                sim.stop()
                sims.remove(sim)
                r = OrderedDict(conversations=n, **r)
                r["rows_total"] = sum((t.get("rows") or 0) for t in (r.get("tables") or {}).values())
                if runs:
                    prev = runs[-1]
                    r["rss_growth_vs_previous"] = ratio(r["max_rss_mib"], prev["max_rss_mib"])
                    factor = n / prev["conversations"]
                    r["rss_growth_per_10x"] = round(r["rss_growth_vs_previous"] ** (1 / math.log10(factor)), 2) if factor > 1 else None
                runs.append(r)
                if not args.keep:
                    shutil.rmtree(os.path.dirname(r["duckdb"]), ignore_errors=True)
                report["scaling"] = OrderedDict(runs=runs, rss_growth_per_10x=[x.get("rss_growth_per_10x") for x in runs[1:]])
                save()
    finally:
        for sim in sims:
            sim.stop()
        report["finished_at"] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        save()
        if args.keep:
            log(f"kept the temporary outputs in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_summary(report)
    print(f"\nreport: {os.path.relpath(os.path.join(run_dir, 'report.json'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
