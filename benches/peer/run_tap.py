#!/usr/bin/env python3
"""Run the incumbent Singer tap (tap-helpscout 1.2.2, unmodified) against the
project's Help Scout simulator and compare what it extracts with the
simulator's ground truth.

Steps:
  1. create/reuse benches/peer/.venv with tap-helpscout==1.2.2 (pinned);
  2. use a running simulator (--sim URL) or start one with
     `helpscout-etl simulate --port 0 --seed S --conversations N`;
  3. write the tap's config into a private temporary directory (the tap
     rewrites that file with the rotated refresh token), run the tap's own
     --discover and mark every stream and field selected;
  4. run the tap through tap_wrapper.py, which redirects
     https://api.helpscout.net to the simulator's loopback address;
  5. count the Singer RECORD messages per stream, fetch /_admin/truth and
     /_admin/stats, print a comparison and write a JSON report to
     benches/peer/out/.

Exit status: 0 all counts match or every difference is explained by a known
flaw of the tap; 1 the tap failed; 2 bad usage / environment; 3 a difference
that no known flaw explains; 4 the simulator could not be reached.

This script uses only the Python standard library; the tap runs in its own
virtual environment because it pins jsonschema 2.6.0.
"""

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, OrderedDict, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
TAP_PACKAGE = "tap-helpscout"
TAP_VERSION = "1.2.2"
TAP_REQUIREMENT = f"{TAP_PACKAGE}=={TAP_VERSION}"

# The 11 tables of the data contract, their primary keys and (for the streams
# the tap replicates incrementally) the replication key the tap filters on.
STREAMS = OrderedDict(
    [
        ("conversations", {"pk": ("id",), "rk": "updated_at"}),
        ("conversation_threads", {"pk": ("id",), "rk": None, "parent": ("conversations", "conversation_id")}),
        ("customers", {"pk": ("id",), "rk": "updated_at"}),
        ("happiness_ratings_report", {"pk": ("conversation_id", "rating_created_at", "rating_customer_id"), "rk": None}),
        ("mailboxes", {"pk": ("id",), "rk": "updated_at"}),
        ("mailbox_fields", {"pk": ("id",), "rk": None, "parent": ("mailboxes", "mailbox_id")}),
        ("mailbox_folders", {"pk": ("id",), "rk": "updated_at", "parent": ("mailboxes", "mailbox_id")}),
        ("teams", {"pk": ("id",), "rk": "updated_at"}),
        ("team_members", {"pk": ("team_id", "user_id"), "rk": None, "parent": ("teams", "team_id")}),
        ("users", {"pk": ("id",), "rk": "updated_at"}),
        ("workflows", {"pk": ("id",), "rk": "modified_at"}),
    ]
)

# Known flaws of tap-helpscout 1.2.2 (numbers as in helpscout-api.md section 8).
FLAWS = {
    "start_date_filter": "flaw 1: rows whose replication key is older than the bookmark "
    "(start_date on a first run) are not requested (modifiedSince) or dropped client-side",
    "shared_folder_bookmark": "flaw 4: one mailbox_folders bookmark shared by all mailboxes; "
    "folders of later mailboxes older than an earlier mailbox's newest folder are skipped",
    "children_of_dropped_parents": "flaw 5: children are only read for parents the tap emitted",
    "report_window": "happiness report requested for start=start_date..end=now only",
    "removed_not_seen": "flaw 7: deletes and merges are invisible to the tap",
}

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
URL_RE = re.compile(r"https?://(?:127\.0\.0\.1|localhost|\[::1\]):\d+")
CHILD_LOG_RE = re.compile(r"Starting sync for child stream (\w+) of parent (\w+) for Id (\d+)")


# Recognisable ways the tap dies, matched against its log.
FAILURE_PATTERNS = [
    (re.compile(r"Http403Error"), "403 from the API (on the happiness report: the Standard plan has no reports); "
     "the tap stops and the streams after it (mailboxes, teams, users, workflows) are never read"),
    (re.compile(r"Giving up request.*Http429Error|Http429Error[\s\S]*Traceback"), "rate limit: 7 backoff tries "
     "(factor 3, jittered, Retry-After ignored) were not enough (flaw 6)"),
    (re.compile(r"Http401Error"), "401: the tap never refreshes and retries (flaw 6)"),
    (re.compile(r"get_access_token[\s\S]*Http400Error"), "token refresh rejected (400): the refresh token was "
     "already used (they rotate) or is wrong"),
    (re.compile(r"max\(\) (arg|iterable argument) is an empty sequence"), "a conversation with neither userUpdatedAt "
     "nor customerWaitingSince.time"),
    (re.compile(r"'NoneType' object has no attribute 'get'"), "customerWaitingSince: null on a conversation"),
    (re.compile(r"KeyError: '(page|pages|totalPages|number|refresh_token|expires_in)'"), "an answer without a field the tap needs"),
    (re.compile(r"ConnectionError|ReadTimeout|RemoteDisconnected"), "connection error (the tap does not retry these)"),
]


def failure_cause(log_text):
    for pattern, meaning in FAILURE_PATTERNS:
        if pattern.search(log_text):
            return meaning
    return None


def log(message):
    sys.stderr.write(f"[run_tap] {message}\n")
    sys.stderr.flush()


def utcnow():
    return dt.datetime.now(dt.timezone.utc)


def parse_ts(value):
    """Parse an ISO-8601 timestamp to an aware UTC datetime, or None."""
    if not isinstance(value, str) or not TS_RE.match(value):
        return None
    text = value.replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def fmt_ts(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def norm_key_value(value):
    """Normalise one primary-key component so tap output and truth compare."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        parsed = parse_ts(value)
        if parsed is not None:
            return parsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def key_of(row, pk):
    return tuple(norm_key_value(row.get(col)) for col in pk)


def dig(row, path):
    value = row
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


# --------------------------------------------------------------------------
# environment


def ensure_venv(venv_dir, python):
    """Create/reuse the tap's own virtual environment with the pinned tap."""
    venv_python = os.path.join(venv_dir, "bin", "python")
    marker = os.path.join(venv_dir, f".installed-{TAP_PACKAGE}-{TAP_VERSION}")
    if os.path.exists(venv_python) and os.path.exists(marker):
        return venv_python
    if not os.path.exists(venv_python):
        log(f"creating virtual environment {venv_dir}")
        subprocess.run([python, "-m", "venv", venv_dir], check=True)
    log(f"installing {TAP_REQUIREMENT} into {venv_dir}")
    subprocess.run([venv_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", TAP_REQUIREMENT], check=True)
    probe = subprocess.run(
        [venv_python, "-c", "import importlib.metadata as m; print(m.version('tap-helpscout'))"],
        check=True,
        capture_output=True,
        text=True,
    )
    if probe.stdout.strip() != TAP_VERSION:
        raise SystemExit(f"unexpected {TAP_PACKAGE} version in {venv_dir}: {probe.stdout.strip()}")
    with open(marker, "w", encoding="utf-8") as handle:
        handle.write(TAP_REQUIREMENT + "\n")
    return venv_python


def venv_versions(venv_python):
    probe = subprocess.run(
        [
            venv_python,
            "-c",
            "import importlib.metadata as m, json, sys; "
            "print(json.dumps({'python': sys.version.split()[0], **{p: m.version(p) for p in "
            "('tap-helpscout', 'singer-python', 'requests', 'jsonschema', 'backoff')}}))",
        ],
        capture_output=True,
        text=True,
    )
    try:
        return json.loads(probe.stdout)
    except ValueError:
        return {}


class Simulator:
    """A simulator process started by this script (`helpscout-etl simulate`)."""

    def __init__(self, binary, port, seed, conversations, extra_args, log_path, startup_timeout):
        self.cmd = [binary, "simulate", "--port", str(port), "--seed", str(seed), "--conversations", str(conversations)]
        self.cmd += list(extra_args or [])
        self.log_path = log_path
        self.stdout_lines = []
        self.base_url = None
        log("starting simulator: " + " ".join(self.cmd))
        self._stderr = open(log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL, text=True, bufsize=1
        )
        found = threading.Event()

        def reader():
            for line in self.proc.stdout:
                self.stdout_lines.append(line.rstrip("\n"))
                if self.base_url is None:
                    match = URL_RE.search(line)
                    if match:
                        self.base_url = match.group(0)
                        found.set()
            found.set()

        self._reader = threading.Thread(target=reader, daemon=True)
        self._reader.start()
        if not found.wait(startup_timeout) or self.base_url is None:
            self.stop()
            tail = "\n".join(self.stdout_lines[-10:])
            raise RuntimeError(
                f"simulator did not print its base URL within {startup_timeout}s "
                f"(exit code {self.proc.poll()}); stdout:\n{tail}\nsee {log_path}"
            )
        log(f"simulator listening on {self.base_url} (pid {self.proc.pid})")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


def http_get_json(base, path, timeout=120):
    with urllib.request.urlopen(base.rstrip("/") + path, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def wait_until_up(base, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            http_get_json(base, "/_admin/stats", timeout=5)
            return
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = exc
            time.sleep(0.2)
    raise RuntimeError(f"simulator at {base} not answering /_admin/stats: {last}")


def run_child(cmd, stdout_path, stderr_path, timeout, env=None):
    """Run a child process; returns (exit code, wall seconds, rusage of that child)."""
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        result = {}

        def waiter():
            _, status, usage = os.wait4(proc.pid, 0)
            result["wall"] = time.perf_counter() - started
            result["status"] = status
            result["usage"] = usage

        thread = threading.Thread(target=waiter, daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            log(f"timeout after {timeout}s, stopping the tap (pid {proc.pid})")
            proc.kill()
            thread.join()
            code = 124
        else:
            code = os.waitstatus_to_exitcode(result["status"])
        proc.returncode = code  # already reaped by os.wait4
    usage = result["usage"]
    return code, result["wall"], {
        "user_s": round(usage.ru_utime, 3),
        "sys_s": round(usage.ru_stime, 3),
        "max_rss_mib": round(usage.ru_maxrss / 1024.0, 1),
    }


# --------------------------------------------------------------------------
# catalog, config, Singer output


def select_everything(catalog, streams):
    """Mark the selected streams and all their fields selected."""
    by_id = {s["tap_stream_id"]: s for s in catalog["streams"]}
    unknown = sorted(set(streams) - set(by_id))
    if unknown:
        raise SystemExit(f"the tap's catalog has no stream(s) {unknown}; it has {sorted(by_id)}")
    for stream in catalog["streams"]:
        chosen = stream["tap_stream_id"] in streams
        for entry in stream.get("metadata", []):
            if not entry.get("breadcrumb"):
                entry["metadata"]["selected"] = chosen
            elif chosen:
                entry["metadata"]["selected"] = True
    return catalog


def read_singer(path, keep_rows=True):
    streams = defaultdict(lambda: {"records": 0, "keys": Counter(), "key_properties": None, "rows": {}, "schema": None})
    states = []
    other = Counter()
    with open(path, "rb") as handle:
        for raw in handle:
            line = raw.strip()
            if not line:
                continue
            try:
                message = json.loads(line)
            except ValueError:
                other["non-json"] += 1
                continue
            kind = message.get("type")
            if kind == "RECORD":
                name = message["stream"]
                stream = streams[name]
                stream["records"] += 1
                record = message["record"]
                pk = STREAMS.get(name, {}).get("pk") or tuple(stream["key_properties"] or ())
                key = key_of(record, pk)
                stream["keys"][key] += 1
                if keep_rows:
                    stream["rows"][key] = record  # the last version, as a loader would keep
            elif kind == "SCHEMA":
                streams[message["stream"]]["key_properties"] = message.get("key_properties")
                streams[message["stream"]]["schema"] = message.get("schema")
            elif kind == "STATE":
                states.append(message.get("value"))
            else:
                other[str(kind)] += 1
    return streams, states, other


def endpoint_of(path):
    return re.sub(r"/\d+(?=/|$)", "/{id}", path)


def summarise_requests(path):
    by_endpoint = OrderedDict()
    first = last = None
    if not os.path.exists(path):
        return by_endpoint, 0, None
    with open(path, encoding="utf-8") as handle:
        entries = [json.loads(line) for line in handle if line.strip()]
    for entry in entries:
        key = f"{entry['method']} {endpoint_of(entry['path'])}"
        slot = by_endpoint.setdefault(key, {"requests": 0, "statuses": Counter(), "total_ms": 0.0, "max_ms": 0.0})
        slot["requests"] += 1
        slot["statuses"][str(entry["status"])] += 1
        slot["total_ms"] += entry["ms"]
        slot["max_ms"] = max(slot["max_ms"], entry["ms"])
        first = entry["t"] if first is None else min(first, entry["t"])
        last = entry["t"] if last is None else max(last, entry["t"])
    for slot in by_endpoint.values():
        slot["statuses"] = dict(slot["statuses"])
        slot["mean_ms"] = round(slot["total_ms"] / slot["requests"], 3)
        slot["total_ms"] = round(slot["total_ms"], 1)
    return by_endpoint, len(entries), (last - first) if first is not None else None


def numeric_delta(before, after, prefix=""):
    """Flatten two JSON documents and return the non-zero numeric differences."""
    out = OrderedDict()
    if isinstance(after, dict):
        for key, value in after.items():
            sub = before.get(key) if isinstance(before, dict) else None
            out.update(numeric_delta(sub, value, f"{prefix}{key}."))
    elif isinstance(after, (int, float)) and not isinstance(after, bool):
        base = before if isinstance(before, (int, float)) and not isinstance(before, bool) else 0
        if after - base:
            out[prefix[:-1]] = after - base
    return out


def removed_ids(removed):
    """Ids of removed conversations: the keys of a map (id -> "deleted" /
    {"merged_into": id}) or the ids of a list; merge targets are not removed."""
    out = set()
    if isinstance(removed, dict):
        items = removed.keys()
    elif isinstance(removed, list):
        items = [r.get("id") if isinstance(r, dict) else r for r in removed]
    else:
        items = []
    for item in items:
        value = norm_key_value(item)
        if isinstance(value, int):
            out.add(value)
    return out


def normalise_stats(stats):
    """Turn the simulator's request stats into flat counters.

    `{"total": n, "rate_limited": n, "faults_injected": n, "by_endpoint":
    [{"method", "endpoint", "status", "count"}]}` becomes `{"total": n, ...,
    "GET /v2/conversations 200": n, ...}`; other shapes are kept as they are.
    """
    if not isinstance(stats, dict):
        return stats
    out = OrderedDict()
    for key, value in stats.items():
        if isinstance(value, list) and all(isinstance(v, dict) and "count" in v for v in value):
            for v in value:
                label = " ".join(str(v[k]) for k in ("method", "endpoint", "status") if k in v)
                out[label] = out.get(label, 0) + v["count"]
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------
# comparison


def conversation_updated_at(row):
    """The derived updated_at: later of user_updated_at and customer_waiting_since.time."""
    if row.get("updated_at"):
        return parse_ts(row["updated_at"])
    candidates = [parse_ts(row.get("user_updated_at")), parse_ts(dig(row, "customer_waiting_since.time"))]
    candidates = [c for c in candidates if c is not None]
    return max(candidates) if candidates else None


def replication_value(stream, row):
    rk = STREAMS[stream]["rk"]
    if rk is None:
        return None
    if stream == "conversations":
        return conversation_updated_at(row)
    return parse_ts(row.get(rk))


def predict_folder_drops(truth_rows, mailbox_order, start_date):
    """Replay the tap's shared mailbox_folders bookmark over the true folders.

    Returns the keys the tap is expected to skip, given the order in which it
    visited the mailboxes (taken from its log).
    """
    by_mailbox = defaultdict(list)
    for row in truth_rows:
        by_mailbox[norm_key_value(row.get("mailbox_id"))].append(row)
    bookmark = start_date
    dropped = set()
    for mailbox_id in mailbox_order:
        newest = bookmark
        for row in by_mailbox.get(mailbox_id, []):
            value = parse_ts(row.get("updated_at"))
            if value is None:
                continue
            if value >= bookmark:
                newest = max(newest, value)
            else:
                dropped.add(key_of(row, STREAMS["mailbox_folders"]["pk"]))
        bookmark = newest
    return dropped


def compare(tap_streams, truth, selected, start_date, report_window, child_order):
    tables = truth.get("tables", {}) if isinstance(truth, dict) else {}
    removed = removed_ids(truth.get("removed_conversations")) if isinstance(truth, dict) else set()
    emitted_keys = {name: set(tap_streams[name]["keys"]) if name in tap_streams else set() for name in STREAMS}
    results = OrderedDict()
    for name, spec in STREAMS.items():
        if name not in selected:
            continue
        pk = spec["pk"]
        rows = tables.get(name)
        tap = tap_streams.get(name)
        tap_records = tap["records"] if tap else 0
        tap_keys = set(tap["keys"]) if tap else set()
        duplicates = sum(n - 1 for n in tap["keys"].values() if n > 1) if tap else 0
        entry = OrderedDict(
            stream=name,
            tap_records=tap_records,
            tap_distinct_keys=len(tap_keys),
            tap_duplicate_records=duplicates,
            simulator_rows=None if rows is None else len(rows),
            difference=None,
            missing=0,
            extra=0,
            explained=OrderedDict(),
            unexplained_missing=[],
            unexplained_extra=[],
            status="ok",
        )
        if rows is None:
            entry["status"] = "no-truth"
            results[name] = entry
            continue
        truth_by_key = {}
        for row in rows:
            truth_by_key[key_of(row, pk)] = row
        entry["simulator_distinct_keys"] = len(truth_by_key)
        entry["difference"] = len(tap_keys) - len(truth_by_key)
        missing = set(truth_by_key) - tap_keys
        extra = tap_keys - set(truth_by_key)
        entry["missing"] = len(missing)
        entry["extra"] = len(extra)

        folder_drops = set()
        if name == "mailbox_folders":
            order = [int(i) for i in child_order.get("mailbox_folders", [])]
            folder_drops = predict_folder_drops(rows, order, start_date)
            entry["mailbox_order"] = order
            entry["predicted_shared_bookmark_drops"] = len(folder_drops)

        unexplained = []
        for key in sorted(missing, key=repr):
            row = truth_by_key[key]
            reason = None
            parent = spec.get("parent")
            if parent and parent[0] in selected:
                parent_id = norm_key_value(row.get(parent[1]))
                if (parent_id,) not in emitted_keys[parent[0]]:
                    reason = "children_of_dropped_parents"
            if reason is None and spec["rk"]:
                value = replication_value(name, row)
                if value is not None and value < start_date:
                    reason = "start_date_filter"
            if reason is None and key in folder_drops:
                reason = "shared_folder_bookmark"
            if reason is None and name == "happiness_ratings_report":
                created = parse_ts(row.get("rating_created_at"))
                if created is not None and (created < report_window[0] or created >= report_window[1]):
                    reason = "report_window"
            if reason is None:
                unexplained.append(key)
            else:
                entry["explained"][reason] = entry["explained"].get(reason, 0) + 1
        extra_unexplained = []
        for key in sorted(extra, key=repr):
            if name == "conversations" and key[0] in removed:
                entry["explained"]["removed_not_seen"] = entry["explained"].get("removed_not_seen", 0) + 1
            else:
                extra_unexplained.append(key)
        entry["unexplained_missing"] = [list(k) for k in unexplained[:20]]
        entry["unexplained_missing_count"] = len(unexplained)
        entry["unexplained_extra"] = [list(k) for k in extra_unexplained[:20]]
        entry["unexplained_extra_count"] = len(extra_unexplained)
        if unexplained or extra_unexplained:
            entry["status"] = "UNEXPLAINED"
        elif missing or extra:
            entry["status"] = "explained"
        results[name] = entry
    return results


def norm_value(value):
    """Normalise a field value for comparison: timestamps to one format, and
    null / absent / [] / {} all count as empty."""
    if isinstance(value, str):
        parsed = parse_ts(value)
        return parsed.strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def is_empty(value):
    return value is None or value == [] or value == {}


def schema_has(schema, path):
    """True when the tap's JSON schema declares the field at `path` (list indices skipped)."""
    node = schema
    for part in path:
        if isinstance(part, int):
            continue
        while isinstance(node, dict) and "properties" not in node:
            if "items" in node:
                node = node["items"]
            elif "anyOf" in node:
                node = next((n for n in node["anyOf"] if n.get("type") != "null"), {})
            else:
                return False
        if not isinstance(node, dict) or part not in node.get("properties", {}):
            return False
        node = node["properties"][part]
    return True


def diff_values(tap, truth, path, out):
    """Collect (path, tap value, truth value) where two rows disagree."""
    if is_empty(tap) and is_empty(truth):
        return
    if isinstance(tap, dict) and isinstance(truth, dict):
        for key in sorted(set(tap) | set(truth)):
            diff_values(tap.get(key), truth.get(key), path + (key,), out)
        return
    if isinstance(tap, list) and isinstance(truth, list) and len(tap) == len(truth):
        for i, (a, b) in enumerate(zip(tap, truth)):
            diff_values(a, b, path + (i,), out)
        return
    if norm_value(tap) != norm_value(truth):
        out.append((path, tap, truth))


def check_values(tap_streams, tables, selected):
    """Field-by-field comparison of the rows the tap emitted with the simulator's truth.

    Informational: shows fields the tap drops or renames (flaw 9) and any place where
    the simulator's API answer and its own ground truth disagree.
    """
    result = OrderedDict()
    for name in selected:
        tap = tap_streams.get(name)
        rows = tables.get(name)
        if not tap or rows is None:
            continue
        pk = STREAMS[name]["pk"]
        truth_by_key = {key_of(row, pk): row for row in rows}
        schema = tap.get("schema") or {}
        counts = Counter()
        examples = {}
        compared = 0
        for key, record in tap["rows"].items():
            row = truth_by_key.get(key)
            if row is None:
                continue
            compared += 1
            found = []
            diff_values(record, row, (), found)
            seen = set()
            for path, a, b in found:
                label = ".".join("[]" if isinstance(p, int) else p for p in path).replace(".[]", "[]")
                if label in seen:
                    continue
                seen.add(label)
                counts[label] += 1
                examples.setdefault(label, {"key": list(key), "tap": a, "truth": b, "path": path})
        fields = OrderedDict()
        for label, count in counts.most_common():
            example = examples[label]
            path = example.pop("path")
            if example["tap"] is None and not schema_has(schema, path):
                kind = "absent from the tap's schema"
            elif example["truth"] is None and not is_empty(example["tap"]):
                kind = "in the tap's output, not in the truth"
            else:
                kind = "values differ"
            for side in ("tap", "truth"):
                text = json.dumps(example[side], default=str)
                if len(text) > 120:
                    example[side] = text[:117] + "..."
            fields[label] = OrderedDict(rows=count, kind=kind, example=example)
        result[name] = OrderedDict(rows_compared=compared, fields=fields)
    return result


# --------------------------------------------------------------------------
# output


def print_table(headers, rows, out=sys.stdout, left=(0,)):
    """Print an aligned text table; columns in ``left`` are left-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(str(cell)))

    def fmt(cells):
        return "  ".join(
            str(c).ljust(w) if i in left else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    out.write(fmt(headers) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in rows:
        out.write(fmt(row) + "\n")


def fmt_diff(value):
    if value is None:
        return "-"
    return f"{value:+d}" if value else "0"


def print_report(report):
    out = sys.stdout
    tap = report["tap"]
    out.write("\n")
    out.write(
        f"tap-helpscout {report['versions'].get('tap-helpscout', '?')} against {report['simulator']['base_url']}"
        f" (conversations={report['simulator'].get('conversations')}, seed={report['simulator'].get('seed')})\n"
    )
    out.write(
        f"tap exit code {tap['exit_code']}, wall {tap['wall_s']:.2f}s, user {tap['rusage']['user_s']}s,"
        f" sys {tap['rusage']['sys_s']}s, max RSS {tap['rusage']['max_rss_mib']} MiB,"
        f" {tap['records_total']} records, {report['requests']['total']} HTTP requests\n\n"
    )
    rows = []
    for entry in report["streams"].values():
        notes = "; ".join(f"{n}: {FLAWS[k].split(':')[0]} ({k})" for k, n in entry["explained"].items())
        if entry["status"] == "tap-failed-here":
            notes = (notes + "; " if notes else "") + "the tap died in this stream"
        elif entry["status"] == "not-reached":
            notes = (notes + "; " if notes else "") + "never reached: the tap died before it"
        elif entry["status"] == "UNEXPLAINED":
            notes = (notes + "; " if notes else "") + (
                f"UNEXPLAINED missing={entry['unexplained_missing_count']} extra={entry['unexplained_extra_count']}"
            )
        if entry["tap_duplicate_records"]:
            notes = (notes + "; " if notes else "") + f"{entry['tap_duplicate_records']} duplicate records"
        rows.append(
            [
                entry["stream"],
                entry["tap_records"],
                entry["tap_distinct_keys"],
                "-" if entry["simulator_rows"] is None else entry["simulator_rows"],
                fmt_diff(entry["difference"]),
                entry["status"],
                notes,
            ]
        )
    print_table(
        ["stream", "tap records", "distinct keys", "simulator rows", "difference", "status", "explanation"], rows, left=(0, 5, 6)
    )
    used = sorted({k for e in report["streams"].values() for k in e["explained"]})
    if used:
        out.write("\n")
        for key in used:
            out.write(f"  {key}: {FLAWS[key]}\n")
    values = report.get("values")
    if values:
        out.write("\nField-by-field check against the truth (rows whose field differs; informational):\n")
        rows = []
        for stream, check in values.items():
            for field, info in check["fields"].items():
                example = info["example"]
                rows.append([
                    stream,
                    field,
                    f"{info['rows']}/{check['rows_compared']}",
                    info["kind"],
                    f"tap={json.dumps(example['tap'], default=str)[:40]} truth={json.dumps(example['truth'], default=str)[:40]}",
                ])
        if rows:
            print_table(["stream", "field", "rows", "kind", "example"], rows, left=(0, 1, 3, 4))
        else:
            out.write("  every field of every row matches\n")
    out.write("\nHTTP requests made by the tap (discovery + sync), by endpoint:\n")
    rows = []
    for endpoint, slot in report["requests"]["by_endpoint"].items():
        statuses = ",".join(f"{k}x{v}" for k, v in sorted(slot["statuses"].items()))
        rows.append([endpoint, slot["requests"], statuses, slot["mean_ms"], slot["max_ms"], slot["total_ms"]])
    rows.append(["total", report["requests"]["total"], "", "", "", ""])
    print_table(["endpoint", "requests", "statuses", "mean ms", "max ms", "total ms"], rows, left=(0, 2))
    delta = report["simulator"].get("stats_delta")
    if delta:
        out.write("\nSimulator /_admin/stats, change over the run:\n")
        print_table(["counter", "delta"], [[k, v] for k, v in delta.items()])
    out.write(f"\nverdict: {report['verdict']}\nreport: {report['report_path']}\n")


def save_rotated_token(config_path, token_file, original):
    """Keep the refresh token the tap rotated (it only rewrites its own config)."""
    try:
        with open(config_path, encoding="utf-8") as handle:
            token = json.load(handle).get("refresh_token")
    except (OSError, ValueError):
        return
    if not token or token == original:
        return
    folder = os.path.dirname(os.path.abspath(token_file))
    fd, tmp = tempfile.mkstemp(prefix=".refresh-token-", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, token_file)
    log(f"rotated refresh token stored in {token_file}")


# --------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_argument_group("simulator")
    source.add_argument("--sim", help="base URL of a running simulator, e.g. http://127.0.0.1:8080")
    source.add_argument("--bin", default=os.environ.get("HELPSCOUT_ETL_BIN"), help="helpscout-etl binary (default $HELPSCOUT_ETL_BIN)")
    source.add_argument("--conversations", type=int, default=200, help="conversations of a started simulator (default 200)")
    source.add_argument("--seed", type=int, default=1, help="seed of a started simulator (default 1)")
    source.add_argument("--port", type=int, default=0, help="port of a started simulator (default 0: any)")
    source.add_argument("--sim-arg", action="append", default=[], help="extra argument for `helpscout-etl simulate` (repeatable)")
    source.add_argument("--startup-timeout", type=float, default=120.0)
    creds = parser.add_argument_group("tap config")
    creds.add_argument("--client-id", default="demo-client-id")
    creds.add_argument("--client-secret", default="demo-client-secret")
    creds.add_argument("--refresh-token", default="demo-refresh-token")
    creds.add_argument(
        "--refresh-token-file",
        help="read the refresh token from this file (if it exists) and store the rotated one there "
        "after the run (atomically), for repeated runs against one simulator",
    )
    creds.add_argument("--user-agent", default="helpscout-etl peer benchmark (tap-helpscout 1.2.2)")
    creds.add_argument("--start-date", default="2000-01-01T00:00:00Z", help="the tap's start_date (default 2000-01-01T00:00:00Z)")
    creds.add_argument("--streams", default=",".join(STREAMS), help="comma-separated streams to select (default: all 11)")
    run = parser.add_argument_group("run")
    run.add_argument("--venv", default=os.path.join(HERE, ".venv"))
    run.add_argument("--python", default=sys.executable, help="interpreter used to create the venv")
    run.add_argument("--out", default=os.path.join(HERE, "out"), help="output folder (default benches/peer/out)")
    run.add_argument("--label", default=None, help="name of this run's folder under --out")
    run.add_argument("--timeout", type=float, default=3600.0, help="seconds before the tap is stopped")
    run.add_argument("--keep-output", action="store_true", help="keep the tap's Singer output and config in the run folder")
    run.add_argument("--no-compare", action="store_true", help="skip /_admin/truth (timing only)")
    run.add_argument("--no-values", action="store_true", help="skip the field-by-field comparison with the truth")
    args = parser.parse_args()

    selected = [s.strip() for s in args.streams.split(",") if s.strip()]
    unknown = sorted(set(selected) - set(STREAMS))
    if unknown:
        parser.error(f"unknown stream(s) {unknown}")
    start_date = parse_ts(args.start_date)
    if start_date is None or not args.start_date.endswith("Z"):
        # The tap pastes start_date into the query string without URL-encoding;
        # a "+00:00" offset would arrive as a space.
        parser.error("--start-date must look like 2000-01-01T00:00:00Z")
    if not args.sim and not args.bin:
        parser.error("give --sim URL of a running simulator, or --bin / $HELPSCOUT_ETL_BIN to start one")

    refresh_token = args.refresh_token
    if args.refresh_token_file and os.path.exists(args.refresh_token_file):
        with open(args.refresh_token_file, encoding="utf-8") as handle:
            refresh_token = handle.read().strip()

    venv_python = ensure_venv(args.venv, args.python)
    versions = venv_versions(venv_python)

    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    if args.label:
        label = args.label
    elif args.sim:
        label = f"{stamp}-external"
    else:
        label = f"{stamp}-c{args.conversations}-s{args.seed}"
    run_dir = os.path.join(args.out, label)
    os.makedirs(run_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="tap-helpscout-peer-")

    simulator = None
    config_path = None
    report = OrderedDict()
    exit_code = 0
    try:
        if args.sim:
            parts = urllib.parse.urlsplit(args.sim)
            base = f"{parts.scheme}://{parts.netloc}"  # the origin; the tap appends /v2 itself
            sim_info = {"base_url": base, "started_by_script": False, "conversations": None, "seed": None}
        else:
            binary = os.path.abspath(os.path.expanduser(args.bin))
            if not os.access(binary, os.X_OK):
                parser.error(f"not an executable: {binary}")
            simulator = Simulator(
                binary, args.port, args.seed, args.conversations, args.sim_arg, os.path.join(run_dir, "simulator.log"), args.startup_timeout
            )
            base = simulator.base_url
            sim_info = {
                "base_url": base,
                "started_by_script": True,
                "command": simulator.cmd,
                "conversations": args.conversations,
                "seed": args.seed,
            }
        try:
            wait_until_up(base, args.startup_timeout)
            stats_before = http_get_json(base, "/_admin/stats")
        except (RuntimeError, urllib.error.URLError, OSError, ValueError) as exc:
            log(f"simulator not reachable: {exc}")
            return 4

        # The tap's config lives in a private temp dir: the tap rewrites it
        # with the rotated refresh token and the access token.
        config_path = os.path.join(work, "config.json")
        with open(config_path, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "client_id": args.client_id,
                    "client_secret": args.client_secret,
                    "refresh_token": refresh_token,
                    "user_agent": args.user_agent,
                    "start_date": args.start_date,
                },
                handle,
                indent=2,
            )
        wrapper = [venv_python, os.path.join(HERE, "tap_wrapper.py"), "--sim-base", base]

        # Discovery (the tap refreshes the token even in discover mode).
        discover_out = os.path.join(work, "discovered.json")
        code, discover_wall, _ = run_child(
            wrapper + ["--request-log", os.path.join(work, "requests-discover.jsonl"), "--", "--discover", "-c", config_path],
            discover_out,
            os.path.join(run_dir, "tap-discover.log"),
            args.timeout,
        )
        if code != 0:
            discover_log = os.path.join(run_dir, "tap-discover.log")
            with open(discover_log, encoding="utf-8", errors="replace") as handle:
                tail = handle.read().splitlines()[-15:]
            with open(discover_log, encoding="utf-8", errors="replace") as handle:
                cause = failure_cause(handle.read())
            log(f"tap --discover failed (exit {code})" + (f": {cause}" if cause else "")
                + f"; last lines of {discover_log}:\n" + "\n".join(tail))
            return 1
        with open(discover_out, encoding="utf-8") as handle:
            catalog = select_everything(json.load(handle), selected)
        catalog_path = os.path.join(work, "catalog.json")
        with open(catalog_path, "w", encoding="utf-8") as handle:
            json.dump(catalog, handle, indent=2)

        # Sync.
        singer_path = os.path.join(work, "singer.jsonl")
        tap_log = os.path.join(run_dir, "tap.log")
        request_log = os.path.join(work, "requests-sync.jsonl")
        log(f"running the tap ({len(selected)} streams selected)")
        sync_started = utcnow()
        code, wall, usage = run_child(
            wrapper + ["--request-log", request_log, "--", "-c", config_path, "--catalog", catalog_path],
            singer_path,
            tap_log,
            args.timeout,
        )
        sync_ended = utcnow()
        log(f"tap exit code {code} after {wall:.2f}s")

        stats_after = None
        truth = None
        try:
            stats_after = http_get_json(base, "/_admin/stats")
            if not args.no_compare:
                truth = http_get_json(base, "/_admin/truth")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log(f"could not read the simulator's admin endpoints: {exc}")

        tap_streams, states, other = read_singer(singer_path, keep_rows=not args.no_values and not args.no_compare)
        child_order = defaultdict(list)
        with open(tap_log, encoding="utf-8", errors="replace") as handle:
            tap_log_tail = []
            for line in handle:
                match = CHILD_LOG_RE.search(line)
                if match:
                    child_order[match.group(1)].append(match.group(3))
                tap_log_tail.append(line.rstrip("\n"))
                tap_log_tail = tap_log_tail[-15:]

        # Requests: both wrapper logs (discovery + sync), by endpoint.
        combined = os.path.join(work, "requests.jsonl")
        with open(combined, "w", encoding="utf-8") as handle:
            for part in ("requests-discover.jsonl", "requests-sync.jsonl"):
                path = os.path.join(work, part)
                if os.path.exists(path):
                    with open(path, encoding="utf-8") as src:
                        shutil.copyfileobj(src, handle)
        by_endpoint, total_requests, span = summarise_requests(combined)
        shutil.copy(combined, os.path.join(run_dir, "requests.jsonl"))

        # The tap asks for the ratings report from start_date up to "now" when it reaches
        # that stream: take the window it really sent.
        report_window = (start_date, sync_ended)
        with open(combined, encoding="utf-8") as handle:
            for line in handle:
                entry = json.loads(line)
                if entry["path"].endswith("/reports/happiness/ratings"):
                    query = urllib.parse.parse_qs(entry["query"])
                    window = (parse_ts(query.get("start", [""])[0]), parse_ts(query.get("end", [""])[0]))
                    if None not in window:
                        report_window = window
                    break
        value_check = None
        if truth is not None:
            comparison = compare(tap_streams, truth, selected, start_date, report_window, child_order)
            if not args.no_values:
                value_check = check_values(tap_streams, truth.get("tables", {}), selected)
        else:
            comparison = OrderedDict(
                (name, OrderedDict(stream=name, tap_records=tap_streams[name]["records"] if name in tap_streams else 0,
                                   tap_distinct_keys=len(tap_streams[name]["keys"]) if name in tap_streams else 0,
                                   tap_duplicate_records=0, simulator_rows=None, difference=None,
                                   explained={}, status="no-truth", unexplained_missing_count=0,
                                   unexplained_extra_count=0))
                for name in selected
            )

        if code != 0:
            # Name the stream the tap died in and those it never reached.
            schema_order = [n for n in tap_streams if tap_streams[n].get("schema") is not None]
            failed_in = schema_order[-1] if schema_order else None
            for name, entry in comparison.items():
                if entry["status"] not in ("UNEXPLAINED", "no-truth"):
                    continue
                if name == failed_in:
                    entry["status"] = "tap-failed-here"
                elif name not in schema_order:
                    entry["status"] = "not-reached"
        records_total = sum(s["records"] for s in tap_streams.values())
        unexplained = [n for n, e in comparison.items() if e["status"] == "UNEXPLAINED"]
        if code != 0:
            with open(tap_log, encoding="utf-8", errors="replace") as handle:
                cause = failure_cause(handle.read())
            verdict = f"FAILED: the tap exited with {code}" + (f": {cause}" if cause else "") + f" (see {tap_log})"
            exit_code = 1
        elif truth is None and not args.no_compare:
            verdict = "FAILED: no ground truth from the simulator"
            exit_code = 4
        elif unexplained:
            verdict = "FAILED: unexplained differences in " + ", ".join(unexplained)
            exit_code = 3
        else:
            explained = [n for n, e in comparison.items() if e["status"] == "explained"]
            verdict = "OK: every stream matches" + (
                f" or differs only by known tap flaws ({', '.join(explained)})" if explained else ""
            )

        with open(config_path, encoding="utf-8") as handle:
            rewritten = json.load(handle)
        report.update(
            versions=versions,
            started_at=sync_started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            simulator=dict(
                sim_info,
                stats_before=stats_before,
                stats_after=stats_after,
                stats_delta=numeric_delta(normalise_stats(stats_before), normalise_stats(stats_after))
                if stats_after is not None
                else None,
                removed_conversations=(truth or {}).get("removed_conversations"),
                report_window_requested=[fmt_ts(t) for t in report_window],
            ),
            tap=OrderedDict(
                exit_code=code,
                wall_s=round(wall, 3),
                discover_wall_s=round(discover_wall, 3),
                rusage=usage,
                records_total=records_total,
                records_per_s=round(records_total / wall, 1) if wall else None,
                start_date=args.start_date,
                selected_streams=selected,
                state_messages=len(states),
                final_state=states[-1] if states else None,
                other_messages=dict(other),
                refresh_token_rotated=rewritten.get("refresh_token") != refresh_token,
                config_keys_after_run=sorted(rewritten),
                log_tail=tap_log_tail if code != 0 else [],
            ),
            requests=OrderedDict(total=total_requests, span_s=round(span, 3) if span else span, by_endpoint=by_endpoint),
            streams=comparison,
            values=value_check,
            flaws=FLAWS,
            verdict=verdict,
        )
        report_path = os.path.join(run_dir, "report.json")
        report["report_path"] = report_path
        with open(report_path, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2, default=str)
        shutil.copy(report_path, os.path.join(args.out, "report-latest.json"))
        if args.keep_output:
            for name in ("singer.jsonl", "catalog.json"):
                shutil.copy(os.path.join(work, name), os.path.join(run_dir, name))
            redacted = {k: ("<redacted>" if k in ("client_secret", "refresh_token", "access_token") else v) for k, v in rewritten.items()}
            with open(os.path.join(run_dir, "config-after-run.json"), "w", encoding="utf-8") as handle:
                json.dump(redacted, handle, indent=2)
        print_report(report)
        if code != 0:
            sys.stdout.write("\nlast lines of the tap's log:\n" + "\n".join(tap_log_tail) + "\n")
        return exit_code
    finally:
        if args.refresh_token_file and config_path and os.path.exists(config_path):
            save_rotated_token(config_path, args.refresh_token_file, refresh_token)
        if simulator is not None:
            simulator.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
