#!/usr/bin/env python3
"""Real-browser tests of the HelpScout Log page: Playwright from PyPI driving Debian's Chromium.

Runs `helpscout-etl demo --serve` (the simulator, a full sync, a day of changes, a refresh, and
the page on loopback with a demo Administrator), adds a Manager with `helpscout-etl users add`,
then, in Chromium:

- signs in as the Manager and as the Administrator (the form's "Username", "Password",
  "Sign in");
- clicks each task of the Quick Reference Card;
- searches by customer email, conversation id and ticket number;
- opens a shared URL with filters and finds them applied;
- exports CSV, JSON and Parquet;
- retries as the Administrator (allowed, logged with who asked) and as the Manager (no button,
  and the server answers 403);
- shows a record carrying hostile HTML without running it (no dialog, no title change, no
  injected element);
- meets a commit in progress (another process holding the DuckDB file) and says so.

Screenshots go to tests/browser/out/ (artifacts); `--screenshots DIR` also writes the README's.
Creates its own virtual environment (outside the work tree). Exits non-zero on the first failure.
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "helpscout-etl-target"))
VENV = TARGET / "browser-venv"
# duckdb: the bundled engine's version, to hold the file from a second process.
REQUIREMENTS = ["playwright==1.65.2", "duckdb==2.0.0", "pyarrow>=15"]
CHROMIUM = "/usr/bin/chromium"
OUT = ROOT / "tests" / "browser" / "out"
MANAGER = ("bob", "manager password 1")


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


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {message}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary() -> str:
    path = os.environ.get("HELPSCOUT_ETL_BIN") or str(TARGET / "debug" / "helpscout-etl")
    if not Path(path).exists():
        subprocess.run(["cargo", "build"], cwd=ROOT, check=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--screenshots", help="also write the README's screenshots into this folder")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    import duckdb

    bin_ = binary()
    work = Path(tempfile.mkdtemp(prefix="helpscout-browser-"))
    demo_dir = work / "demo"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(work / "demo.log", "w+")
    demo = subprocess.Popen(
        [bin_, "demo", "--dir", str(demo_dir), "--conversations", "150", "--seed", "5", "--serve", "--listen", f"127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, cwd=work,
    )
    try:
        text = ""
        for _ in range(600):
            log.seek(0)
            text = log.read()
            if "Serving the HelpScout Log" in text or demo.poll() is not None:
                break
            time.sleep(0.5)
        check("Serving the HelpScout Log" in text, "demo --serve serves the page")
        admin = ("demo", re.search(r"one-time password ([0-9a-f]+)", text).group(1))
        added = subprocess.run([bin_, "users", "add", MANAGER[0], "--role", "manager", "--output", str(demo_dir)],
                               input=MANAGER[1] + "\n", text=True, capture_output=True)
        check(added.returncode == 0, f"a Manager is added: {added.stdout}{added.stderr}")

        db_path = str(demo_dir / "helpscout.duckdb")
        # Facts to look for, from the file itself (read-only, between the page's requests).
        with duckdb.connect(db_path, read_only=True) as con:
            email, conv_id, number = con.execute(
                "SELECT customer_email, conversation_id, conversation_number FROM helpscout_log "
                "WHERE event_type = 'Ticket Created' AND customer_email IS NOT NULL ORDER BY event_id LIMIT 1").fetchone()
            tickets = con.execute("SELECT count(*) FROM helpscout_log WHERE event_type = 'Ticket Created' AND status = 'Success'").fetchone()[0]
        # A failed record to retry, and a record carrying hostile HTML, as a broken sync would
        # leave them (written while the page is idle: it holds the file only per request).
        with duckdb.connect(db_path) as con:
            con.execute(
                "INSERT INTO helpscout_log (\"timestamp\", event_type, customer_email, conversation_id, status, direction, details, error_message, table_name, retry_target) "
                "VALUES (now(), 'Ticket Created', ?, ?, 'Failed', 'From HelpScout', 'conversations record could not be synced', "
                "'its conversation_threads could not be read: connection dropped', 'conversations', ?)",
                [email, conv_id, json.dumps({"table": "conversations", "id": conv_id})])
            con.execute(
                "INSERT INTO helpscout_log (\"timestamp\", event_type, customer_email, status, direction, details, error_message) "
                "VALUES (now(), 'Customer Updated', '<img src=x onerror=\"document.title=''pwned''\">@evil.example', 'Failed', 'From HelpScout', "
                "'Customer: <script>document.title=''pwned''</script>', '<b onmouseover=alert(1)>Invalid email address</b>')")

        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            dialogs = []

            def session(user, width=1400, height=1000):
                context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
                page = context.new_page()
                page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                page.goto(base + "/log")
                check("/login" in page.url, f"{user[0]}: the page asks to sign in first")
                page.get_by_label("Username").fill(user[0])
                page.get_by_label("Password").fill(user[1])
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url("**/log")
                return context, page

            # --- The Manager: views, searches, filters, exports; cannot retry.
            ctx, page = session(MANAGER)
            check(page.get_by_role("columnheader", name="HelpScout Conversation ID").count() == 1, "the log is a table with the seed's columns")
            page.screenshot(path=str(OUT / "log.png"))
            for task in ["Check if ticket created", "View sync errors", "Monitor integration health", "Find conversation in HelpScout",
                         "Daily failed tickets check", "Customer sync status", "Retry failed syncs"]:
                page.goto(base + "/log?range=all")
                page.get_by_role("link", name=task).click()
                page.wait_for_load_state()
                check(page.locator("h1").count() == 1 and "Something went wrong" not in page.content(), f"Quick Reference Card: {task} ({page.url[len(base):]})")
            for query, expect in [(email.upper()[:-3], email), (str(conv_id), str(conv_id)), (str(number), str(conv_id))]:
                page.goto(base + "/log?range=all")
                page.get_by_label("Search").fill(query)
                page.get_by_role("button", name="Apply").click()
                page.wait_for_load_state()
                rows = page.locator("table.log tbody tr")
                check(rows.count() >= 1 and all(expect in rows.nth(i).inner_text() for i in range(rows.count())), f"search {query!r} finds {expect}")
            shared = base + "/log?range=all&status=Success&type=Ticket+Created&type=Customer+Synced&direction=From+HelpScout"
            page.goto(shared)
            check(page.get_by_label("Ticket Created").is_checked() and page.get_by_label("Customer Synced").is_checked()
                  and not page.get_by_label("Error", exact=True).is_checked(), "a shared URL's event types are applied")
            check(page.get_by_label("Status").input_value() == "Success" and page.get_by_label("Date range").input_value() == "all", "a shared URL's status and range are applied")
            page.goto(base + "/log?range=all&type=Ticket+Created&status=Success")
            link = page.locator("table.log a[target=_blank]").first
            check(link.get_attribute("rel") == "noopener" and link.get_attribute("href").startswith("https://secure.helpscout.net/conversation/"), "the conversation id opens Help Scout in a new tab")
            for label, kind in [("CSV", "csv"), ("JSON", "json"), ("Parquet", "parquet")]:
                with page.expect_download() as d:
                    page.get_by_role("link", name=label).click()
                path = d.value.path()
                if kind == "csv":
                    lines = Path(path).read_text().splitlines()
                    check(lines[0].startswith("event_id,timestamp,event_type") and len(lines) - 1 == tickets, f"CSV export: {len(lines) - 1} Ticket Created successes of {tickets}")
                elif kind == "json":
                    rows = json.loads(Path(path).read_text())
                    check(len(rows) == tickets and all(r["event_type"] == "Ticket Created" for r in rows), "JSON export")
                else:
                    import pyarrow.parquet as pq
                    check(pq.read_table(path).num_rows == tickets, "Parquet export")
            page.goto(base + "/failures?range=all")
            check(page.get_by_role("button", name="Retry").count() == 0, "no Retry button for a Manager")
            csrf = page.locator("input[name=csrf]").first.get_attribute("value")
            refused = ctx.request.post(base + "/retry", form={"csrf": csrf, "all": "1", "query": "range=all"})
            check(refused.status == 403, "the server refuses a Manager's retry (403)")
            # Hostile HTML is shown, never run.
            page.goto(base + "/log?range=all&q=evil.example")
            check(page.locator("table.log tbody tr").count() == 1, "the hostile record is listed")
            check("<script>" in page.locator("table.log").inner_text(), "its markup is shown as text")
            check(page.title() != "pwned" and page.locator("img[src=x]").count() == 0 and page.locator("table.log b").count() == 0, "and nothing of it runs or renders")
            ctx.close()

            # --- The Administrator: retries one failure, sees who asked.
            ctx, page = session(admin)
            page.goto(base + "/failures?range=all&type=Ticket+Created")
            page.screenshot(path=str(OUT / "failures.png"))
            page.locator("tr", has_text="connection dropped").get_by_role("button", name="Retry").click()
            page.wait_for_load_state()
            check("retried, 0 still failing" in page.content(), "the Administrator's retry succeeds")
            page.goto(base + f"/log?range=all&q={conv_id}&status=Success&type=Ticket+Created")
            check("(asked by demo)" in page.content(), "the retry's outcome is in the log with who asked")
            for name in ["health", "usage", "happiness", "productivity", "users"]:
                page.goto(f"{base}/{name}")
                check(page.locator("h1").count() == 1 and "Something went wrong" not in page.content(), f"the {name} page")
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=name == "productivity")
            page.goto(base + "/productivity")
            heat = page.locator("figure.chart svg rect.heat")
            check(heat.count() == 168 and heat.first.bounding_box()["width"] > 0, "the Productivity page draws its day × hour heat map")
            check(page.get_by_role("link", name="Productivity").count() == 1, "the Productivity page is in the navigation")
            page.goto(base + "/log?range=all&type=Ticket+Created")
            page.locator("td.when a").first.click()
            page.wait_for_load_state()
            check(page.get_by_text("Other events of this conversation or customer").count() == 1, "an event's page")
            page.screenshot(path=str(OUT / "event.png"))

            # --- To HelpScout: the demo's contact form sent one submission twice and one with a
            # broken email. The repeat is shown; the Administrator corrects the email and retries.
            page.goto(base + "/log?range=all")
            dup = page.locator("section.duplicates")
            check(dup.count() == 1 and "jane@example.com" in dup.inner_text(), "the Form duplicates box names the repeat submitter")
            page.goto(base + "/log?range=all&status=Failed&q=joe+at+example.com")
            page.locator("td.when a").first.click()
            page.wait_for_load_state()
            check("Invalid email address" in page.content(), "the failed submission says why")
            page.locator("form.correct input[name=email]").fill("joe@example.com")
            page.locator("form.correct").get_by_role("button", name="Retry").click()
            page.wait_for_load_state()
            check("queued again with the same marker" in page.content(), "the corrected submission is queued again")
            delivered = False
            for _ in range(40):  # the background delivery sends it within moments
                page.goto(base + "/log?range=all&status=Success&q=joe%40example.com&type=Ticket+Created")
                if page.locator("table.log tbody tr").count() >= 1:
                    delivered = True
                    break
                time.sleep(0.5)
            check(delivered, "and becomes a ticket, logged Success")
            page.screenshot(path=str(OUT / "to-helpscout.png"))

            # --- A commit in progress: another process holds the file; the page says so.
            holder = subprocess.Popen([sys.executable, "-c",
                "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(8)", db_path],
                stdout=subprocess.PIPE, text=True)
            check(holder.stdout.readline().strip() == "held", "another process holds the DuckDB file")
            started = time.time()
            response = page.goto(base + "/log?range=all")
            check(response.status == 503 and "A sync is committing" in page.content(), "a request meeting a commit says a sync is committing")
            check(time.time() - started < 7, "after a brief wait, not until the commit ends")
            holder.wait()
            check(page.goto(base + "/log?range=all").status == 200, "and the page is back once the commit is done")

            # --- A phone's width.
            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(base + "/log?range=all")
            page.screenshot(path=str(OUT / "phone.png"))
            check(not dialogs, f"no dialog ever opened: {dialogs}")
            ctx.close()
            browser.close()
        if args.screenshots:
            target = Path(args.screenshots)
            target.mkdir(parents=True, exist_ok=True)
            for f in OUT.glob("*.png"):
                shutil.copy(f, target / f.name)
        print("browser tests: all passed")
    finally:
        demo.terminate()
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            demo.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if not in_venv():
        ensure_venv()
    main()
