#!/usr/bin/python3
"""How long the dashboard's page takes to be fully drawn in headless Chromium, from the request.

Writes a study of 1,000 complete trials x 10 epochs with build/bin/dashboard_bench --keep (which also prints
the server's answer times), serves it with `hpsearch dashboard --db FILE`, and opens the page in Debian's
headless Chromium (driven over the DevTools protocol as tests/dashboard/ does): once to warm the browser
up, RUNS times against that server (which answers with the document it kept), and RUNS times each against a
freshly started server (which draws the charts and computes the importance for that request), each a new
navigation. For each load it prints, in ms from the page's request (the navigation's start):
  - when the page, its script, api/studies and api/study (start-end) had arrived;
  - drawn: when the browser had laid out and painted the page with every chart and the trial table
    (window.hpsearchTimings.drawn, taken in the frame after the redraw);
  - the page's own JavaScript work (window.hpsearchTimings: parse, summary, charts, trials).
and the size of the api/study answer (as sent, and decoded). Not part of the test suite.

    /usr/bin/python3 bench/dashboard_page_bench.py [--runs 5] [--trials 1000]
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "dashboard"))
from chromium_pipe import Chromium  # noqa: E402

MEASURE = """(() => {
  const t = window.hpsearchTimings || {};
  const res = performance.getEntriesByType('resource');
  const study = res.filter(e => e.name.includes('api/study?'))[0];
  const studies = res.filter(e => e.name.includes('api/studies'))[0];
  const nav = performance.getEntriesByType('navigation')[0];
  const script = res.filter(e => e.name.includes('dashboard.js'))[0];
  return {drawn: t.drawn, page_end: Math.round(nav.responseEnd),
          script_end: script ? Math.round(script.responseEnd) : null,
          studies_start: studies ? Math.round(studies.startTime) : null,
          studies_end: studies ? Math.round(studies.responseEnd) : null,
          study_start: study ? Math.round(study.startTime) : null, parse: t.parse, summary: t.summary, charts: t.charts, trials: t.trials,
          study_end: study ? Math.round(study.responseEnd) : null,
          study_sent: study ? study.transferSize : null, study_bytes: study ? study.decodedBodySize : null,
          svg_elements: document.querySelectorAll('#charts svg *').length,
          rows: document.querySelectorAll('#trials tbody tr').length};
})()"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(SOURCE, "build", "bin"))
    parser.add_argument("--hpsearch", help="the hpsearch binary serving the page (default: BUILD/hpsearch)")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--window", default="1280,1600")
    parser.add_argument("--db", help="the study's database: written by dashboard_bench --keep when missing, "
                                     "else reused (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hpsearch-page-bench-") as tmp:
        db = args.db or os.path.join(tmp, "results.db")
        if not os.path.exists(db):
            subprocess.run([os.path.join(args.build, "dashboard_bench"), "--trials", str(args.trials),
                            "--epochs", str(args.epochs), "--keep", db], check=True)
        servers = []

        def start_server():
            log_path = os.path.join(tmp, f"dashboard-{len(servers)}.log")
            with open(log_path, "wb") as log:
                server = subprocess.Popen([args.hpsearch or os.path.join(args.build, "hpsearch"), "dashboard",
                                           "--db", db, "--listen", "127.0.0.1:0"], stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            servers.append(server)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and server.poll() is None:
                with open(log_path, errors="replace") as f:
                    match = re.search(r"^dashboard: (http\S+)$", f.read(), re.M)
                if match:
                    return match.group(1)
                time.sleep(0.05)
            sys.exit("hpsearch dashboard printed no URL:\n" + open(log_path).read())

        def stop_servers():
            for server in servers:
                if server.poll() is None:
                    os.killpg(server.pid, signal.SIGTERM)
                    try:
                        server.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        os.killpg(server.pid, signal.SIGKILL)
                        server.wait()

        def load(browser, url, what):
            browser.navigate("about:blank")
            browser.wait_for("location.href === 'about:blank'", "a blank page")
            browser.navigate(url)
            browser.wait_for("window.hpsearchTimings && window.hpsearchTimings.drawn > 0", "the page drawn",
                             timeout=300)
            r = browser.evaluate(MEASURE)
            print(f"{what}: drawn {r['drawn']} ms from the request; page at {r['page_end']}, script by "
                  f"{r['script_end']}, api/studies {r['studies_start']}-{r['studies_end']}, api/study "
                  f"{r['study_start']}-{r['study_end']} ms ({r['study_sent']} bytes sent, {r['study_bytes']} "
                  f"decoded); page JS: parse {r['parse']}, summary {r['summary']}, charts {r['charts']}, "
                  f"table {r['trials']} ms; {r['svg_elements']} SVG elements, {r['rows']} table rows", flush=True)
            return r["drawn"]

        try:
            url = start_server()
            with Chromium(os.path.join(tmp, "chromium.log"), window=args.window) as browser:
                # The browser's first page (fonts, code caches) is slower than any later one.
                load(browser, url, "warm-up (the browser's first page, the server draws)")
                kept = [load(browser, url, f"kept document {i + 1}") for i in range(args.runs)]
                drawn = []
                for i in range(args.runs):
                    stop_servers()
                    url = start_server()
                    drawn.append(load(browser, url, f"fresh server {i + 1} (it draws the charts)"))
            for what, times in (("the server's kept document", kept), ("a fresh server drawing the charts", drawn)):
                print(f"drawn, {what}: median {statistics.median(times):.0f} ms, min {min(times)} ms, "
                      f"max {max(times)} ms over {len(times)} loads")
            print("load average:", " ".join(open("/proc/loadavg").read().split()[:3]))
        finally:
            stop_servers()

if __name__ == "__main__":
    main()
