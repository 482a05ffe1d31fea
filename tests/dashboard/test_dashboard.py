"""The web dashboard (`hpsearch dashboard`, and the one `hpsearch run` starts) in a real headless Chromium
over databases made by real studies (`hpsearch run` with command trials), its HTTP errors, its refusal to
listen beyond loopback without a token and TLS, and report.html.

Run by ctest (tests/CMakeLists.txt sets HPSEARCH_BIN); by hand:
    HPSEARCH_BIN=build/bin/hpsearch /usr/bin/python3 -m pytest -q tests/dashboard
Every wait polls its condition with a generous cap; every process started is killed at the end.
"""
import hashlib
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chromium_pipe import CHROMIUM, Chromium  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
HPSEARCH = os.environ.get("HPSEARCH_BIN", os.path.join(SOURCE, "build", "bin", "hpsearch"))

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason=f"{CHROMIUM} is missing (scripts/install-deps.sh installs chromium)")

# The charts a study with parameters x (float), lr (log float), opt (categorical), layers (int), two epochs
# and a final trial gets.
CHARTS = ["history", "curves-train_loss", "curves-val_loss", "curves-val_accuracy", "curves-val_f1",
          "parallel", "slice-x", "slice-lr", "slice-opt", "slice-layers", "final-curves"]


N_TRIALS = 8  # the finished study's search trials


def write_study(path, name, n_trials, parallelism, final_stage, gate=""):
    command = ["/usr/bin/python3", os.path.join(HERE, "gated_trial.py"), "--epochs", "2"]
    if gate:
        command += ["--gate", gate]
    path.write_text(
        f"name: {name}\nseed: 7\n"
        f"data: {{train_file: {SOURCE}/data/banking77/train.csv, test_file: {SOURCE}/data/banking77/test.csv}}\n"
        f"runner:\n  type: command\n  command: {json.dumps(command)}\n  kill_grace_seconds: 1\n"
        "search_space:\n"
        "  x: {type: float, low: 0.0, high: 1.0}\n"
        "  lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n"
        "  opt: {choices: [adam, sgd]}\n"
        "  layers: {type: int, low: 1, high: 3}\n"
        "objective: {metric: val_accuracy, direction: maximize}\n"
        f"budget: {{n_trials: {n_trials}, parallelism: {parallelism}}}\n"
        f"final_stage: {{enabled: {'true' if final_stage else 'false'}}}\n")
    return str(path)


class Background:
    """A process in its own session, its output in a file; killed with its whole group at the end."""

    def __init__(self, argv, log_path):
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_for_line(self, pattern, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output(), re.M)
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} (exit {self.process.poll()}):\n{self.output()}")

    def stop(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


def start_dashboard(tmp_path, *args):
    dashboard = Background([HPSEARCH, "dashboard", *args], str(tmp_path / "dashboard.log"))
    url = dashboard.wait_for_line(r"^dashboard: (http\S+)$").group(1)
    assert dashboard.output().startswith("dashboard: "), "the URL is the first line"
    return dashboard, url


def get(url, headers=None, context=None):
    """(status, body, headers) of a GET, 4xx and 5xx included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def raw_get(url, path):
    """A GET of `path` exactly as written (no normalisation of ../)."""
    parsed = urllib.parse.urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def file_digests(db):
    return {suffix: hashlib.sha256(open(db + suffix, "rb").read()).hexdigest()
            for suffix in ("", "-wal") if os.path.exists(db + suffix)}


EMPTY = hashlib.sha256(b"").hexdigest()


def rows_js():
    return ("Array.from(document.querySelectorAll('#trials tbody tr.trial-row')).map(tr => "
            "Array.from(tr.cells).map(td => td.textContent))")


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    """A finished study's database: N_TRIALS search trials on 2 workers and the final trial, by `hpsearch run`."""
    d = tmp_path_factory.mktemp("finished")
    study = write_study(d / "shown.yaml", "shown", n_trials=N_TRIALS, parallelism=2, final_stage=True)
    db = str(d / "results.db")
    run = subprocess.run([HPSEARCH, "run", study, "--workers", "2", "--db", db, "--report", str(d / "report"),
                          "--no-dashboard"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "dashboard:" not in run.stdout  # --no-dashboard
    return d, db


def check_page(browser, n_rows):
    """Waits for the study's rows and every chart, and checks what they show."""
    browser.wait_for(f"document.querySelectorAll('#trials tbody tr.trial-row').length === {n_rows} && "
                     f"{json.dumps(CHARTS)}.every(id => document.querySelector('#chart-' + id + ' svg'))",
                     f"{n_rows} trial rows and the charts {CHARTS}")
    rows = browser.evaluate(rows_js())
    headers = browser.evaluate("Array.from(document.querySelectorAll('#trials thead th')).map(th => th.textContent)")
    for column in ["#", "kind", "state", "val_accuracy", "x", "lr", "opt", "layers", "ep1 train_loss",
                   "ep2 val_accuracy", "attempts", "worker", "error"]:
        assert column in headers
    by_number = {int(r[0]): dict(zip(headers, r)) for r in rows}
    assert sorted(by_number) == list(range(n_rows))
    for number in range(n_rows - 1):
        row = by_number[number]
        assert row["kind"] == "search" and row["state"] == "complete"
        assert row["opt"] in ("adam", "sgd") and row["layers"] in ("1", "2", "3")
        assert row["worker"].startswith("wk-") and row["attempts"] == "1"
        # the objective is the last epoch's accuracy: 1 - |x - 0.3| + 0.02
        assert float(row["val_accuracy"]) == pytest.approx(1 - abs(float(row["x"]) - 0.3) + 0.02, abs=2e-4)
    assert by_number[n_rows - 1]["kind"] == "final"
    # Every search trial is a line in the parallel coordinates and a point in the history and each slice.
    for chart, selector, count in [("parallel", "polyline.line", n_rows - 1),
                                   ("history", "g.point.complete", n_rows - 1),
                                   ("slice-lr", "g.point.complete", n_rows - 1),
                                   ("slice-opt", "g.point.complete", n_rows - 1),
                                   ("curves-val_accuracy", "polyline.line", n_rows - 1)]:
        assert browser.evaluate(f"document.querySelectorAll('#chart-{chart} {selector}').length") == count, chart
    final = browser.evaluate("document.querySelector('#final').textContent")
    if "report.html" not in browser.evaluate("location.href"):
        assert browser.evaluate("document.querySelector('#final tr.adapter-file a').getAttribute('href')").startswith(
            "api/artifact?study=")
    assert "test_accuracy0.9000" in final and "test_f10.8900" in final
    assert browser.evaluate("document.querySelector('#studies tbody').textContent").startswith("shown")
    return by_number


def check_importance(browser, db):
    """Parameter importance: the page shows `hpsearch importance`'s ranking, and x, on which alone the
    objective depends, first."""
    assert browser.evaluate("!document.querySelector('#importance-section').hidden")
    ranking = browser.evaluate("Array.from(document.querySelectorAll('#importance tbody tr'))"
                               ".map(tr => [tr.cells[1].textContent, Number(tr.cells[2].textContent)])")
    cli = subprocess.run([HPSEARCH, "importance", "shown", "--db", db], capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 0, cli.stderr
    expected = [(line.split()[0], float(line.split()[1])) for line in cli.stdout.splitlines() if line.strip()]
    assert [name for name, _ in ranking] == [name for name, _ in expected]
    for (_, shown), (_, computed) in zip(ranking, expected):
        assert shown == pytest.approx(computed, abs=1e-4)
    assert ranking[0][0] == "x"
    assert browser.evaluate("!!document.querySelector('#chart-importance svg')")


def test_dashboard_shows_a_finished_study_in_chromium_and_never_writes_the_database(finished_study, tmp_path):
    d, db = finished_study
    before = file_digests(db)
    dashboard, url = start_dashboard(tmp_path, "--db", db)
    try:
        with Chromium(str(tmp_path / "chromium.log")) as browser:
            browser.navigate(url)
            by_number = check_page(browser, N_TRIALS + 1)
            check_importance(browser, db)
            summary = browser.evaluate("document.querySelector('#study-summary').textContent")
            assert f"budget used: {N_TRIALS}/{N_TRIALS}" in summary and "state: complete" in summary
            # Sorting: a click on the objective's header sorts ascending, a second one descending.
            values = {n: float(r["val_accuracy"]) for n, r in by_number.items() if r["kind"] == "search"}
            click = ("Array.from(document.querySelectorAll('#trials thead th'))"
                     ".find(th => th.textContent === 'val_accuracy').click()")
            browser.evaluate(click)
            browser.evaluate(click)
            order = [int(r[0]) for r in browser.evaluate(rows_js())]
            assert order[:N_TRIALS] == sorted(values, key=lambda n: -values[n])
            # Hovering a row highlights that trial in the charts.
            best = order[0]
            browser.evaluate(f"document.querySelector('#trials tr[data-trial=\"{best}\"]')"
                             ".dispatchEvent(new MouseEvent('mouseenter'))")
            assert browser.evaluate(f"document.querySelectorAll('#chart-parallel .trial-{best}.highlight').length") == 1
    finally:
        dashboard.stop()
    # SQLite may create an empty -wal (and -shm) beside a WAL-mode file a reader opens; no frame is written.
    after = file_digests(db)
    assert after[""] == before[""], "the dashboard changed the database"
    assert after.get("-wal", EMPTY) in (before.get("-wal"), EMPTY), "the dashboard wrote to the WAL"


def test_dashboard_answers_bad_requests_with_a_4xx_that_says_why(finished_study, tmp_path):
    d, db = finished_study
    dashboard, url = start_dashboard(tmp_path, "--db", db)
    try:
        status, body, _ = get(url + "api/studies")
        assert status == 200 and json.loads(body)["studies"][0]["name"] == "shown"
        status, body, _ = get(url + "api/study?id=shown")
        assert status == 200 and len(json.loads(body)["trials"]) == N_TRIALS + 1
        for path, code, says in [
            ("api/study?id=no-such-study", 404, "no study 'no-such-study'"),
            ("api/study", 400, "needs ?id=STUDY"),
            ("api/study?id=", 400, "needs ?id=STUDY"),
            ("api/study?id=shown&sort=1", 400, "takes no parameter 'sort'"),
            ("api/study?id=shown&id=other", 400, "given twice"),
            ("api/studies?limit=3", 400, "takes no parameter 'limit'"),
            ("etc/passwd", 404, "no such page"),
            ("assets/dashboard.js", 404, "no such page"),
        ]:
            status, body, _ = get(url + path)
            assert status == code, path
            assert says in json.loads(body)["error"], path
        # The final trial's stored adapter: the page links its files, and only those are served.
        final = json.loads(get(url + "api/study?id=shown")[1])["final"]
        assert [f["name"] for f in final["files"]] == ["adapter_config.json"]
        status, body, headers = get(url + final["files"][0]["url"])
        assert status == 200 and json.loads(body)["epochs"] == 2
        assert "attachment" in headers["Content-Disposition"]
        study_id = json.loads(get(url + "api/study?id=shown")[1])["id"]
        for query, code in [(f"study={study_id}&file=..%2Fresults.db", 404),
                            (f"study={study_id}&file=%2Fetc%2Fpasswd", 404),
                            (f"study={study_id}&file=adapter_config.json%2F..%2F..%2Fresults.db", 404),
                            ("study=nope&file=adapter_config.json", 404),
                            (f"study={study_id}", 400)]:
            status, body, _ = get(url + "api/artifact?" + query)
            assert status == code and "error" in json.loads(body), query
        for path in ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/dashboard.js/../../../etc/passwd"]:
            status, body = raw_get(url, path)
            assert 400 <= status < 500 and "root:" not in body, path
    finally:
        dashboard.stop()


def test_dashboard_refuses_a_missing_database_and_beyond_loopback_without_token_and_tls(finished_study, tmp_path):
    d, db = finished_study
    missing = subprocess.run([HPSEARCH, "dashboard", "--db", str(tmp_path / "nothing.db")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "nothing.db" in missing.stderr
    assert not os.path.exists(tmp_path / "nothing.db")
    exposed = subprocess.run([HPSEARCH, "dashboard", "--db", db, "--listen", "0.0.0.0:0"],
                             capture_output=True, text=True, timeout=60)
    assert exposed.returncode == 2
    assert "--auth-token-file" in exposed.stderr and "--tls-cert" in exposed.stderr


def openssl(*args):
    subprocess.run(["/usr/bin/openssl", *args], check=True, capture_output=True)


def test_dashboard_beyond_loopback_takes_the_token_once_over_tls(finished_study, tmp_path):
    d, db = finished_study
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(tmp_path / "ca.key"), "-out", str(tmp_path / "ca.pem"), "-days", "2",
            "-subj", "/CN=hpsearch test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
            str(tmp_path / "server.key"), "-out", str(tmp_path / "server.csr"), "-subj", "/CN=localhost")
    (tmp_path / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", str(tmp_path / "server.csr"), "-CA", str(tmp_path / "ca.pem"), "-CAkey",
            str(tmp_path / "ca.key"), "-CAcreateserial", "-out", str(tmp_path / "server.pem"), "-days", "2",
            "-extfile", str(tmp_path / "server.ext"))
    token = "d4shb0ard-t0ken-d4shb0ard-t0ken-d4shb0ard-t0ken"
    (tmp_path / "token").write_text(token + "\n")
    os.chmod(tmp_path / "token", 0o600)
    dashboard, url = start_dashboard(tmp_path, "--db", db, "--listen", "0.0.0.0:0", "--auth-token-file",
                                     str(tmp_path / "token"), "--tls-cert", str(tmp_path / "server.pem"),
                                     "--tls-key", str(tmp_path / "server.key"))
    try:
        assert url.startswith("https://")
        base = f"https://127.0.0.1:{urllib.parse.urlparse(url).port}/"
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        status, body, _ = get(base + "api/studies", context=context)
        assert status == 401 and "auth token" in json.loads(body)["error"]
        status, body, _ = get(base, context=context)
        assert status == 401 and "<form" in body and token not in body
        status, body, _ = get(base + "api/studies", {"Authorization": "Bearer wrong"}, context=context)
        assert status == 401
        status, body, _ = get(base + "api/studies", {"Authorization": "Bearer " + token}, context=context)
        assert status == 200 and json.loads(body)["studies"][0]["name"] == "shown"
        # The login form sets the cookie the page then travels with.
        parsed = urllib.parse.urlparse(base)
        connection = http.client.HTTPSConnection(parsed.hostname, parsed.port, context=context, timeout=30)
        connection.request("POST", "/login", body=urllib.parse.urlencode({"token": token}),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        response.read()
        cookie = response.getheader("Set-Cookie")
        connection.close()
        assert response.status == 303
        assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie
        status, body, _ = get(base, {"Cookie": cookie.split(";")[0]}, context=context)
        assert status == 200 and "dashboard.js" in body
        # Plain HTTP to the TLS port gets nothing.
        with pytest.raises(Exception):
            urllib.request.urlopen(f"http://127.0.0.1:{parsed.port}/api/studies", timeout=10).read()
    finally:
        dashboard.stop()


def test_report_html_opens_in_chromium_with_every_view(finished_study, tmp_path):
    d, db = finished_study
    page = d / "report" / "report.html"  # written by `hpsearch run`'s report
    assert page.exists()
    text = page.read_text()
    assert "<script src=" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    with Chromium(str(tmp_path / "chromium.log")) as browser:
        browser.navigate(page.as_uri())
        check_page(browser, N_TRIALS + 1)
        check_importance(browser, db)
        assert "frozen report" in browser.evaluate("document.querySelector('#status').textContent")


def test_run_prints_the_dashboard_url_on_its_first_lines_and_the_open_page_shows_a_new_trial_without_reload(tmp_path):
    # Trial N > 0 waits for the file go.N: the study moves on only when the test says so. The run (and its
    # dashboard) ends with the study, so the page is only asked about states before the last gate opens.
    gate = tmp_path / "go"
    study = write_study(tmp_path / "live.yaml", "live", n_trials=3, parallelism=1, final_stage=False,
                        gate=str(gate))
    run = Background([HPSEARCH, "run", study, "--workers", "1", "--db", str(tmp_path / "live.db")],
                     str(tmp_path / "run.log"))
    states = ("Array.from(document.querySelectorAll('#trials tbody tr'))"
              ".map(tr => tr.cells[0].textContent + ':' + tr.cells[2].textContent)")
    try:
        url = run.wait_for_line(r"^dashboard: (http://127\.0\.0\.1:\d+/)$").group(1)
        # On the first lines: only the coordinator's address may come before it.
        assert any(line.startswith("dashboard: http://127.0.0.1:") for line in run.output().splitlines()[:2])
        with Chromium(str(tmp_path / "chromium.log")) as browser:
            browser.navigate(url)
            browser.wait_for(f"(s => s.includes('0:complete') && s.includes('1:running'))({states})",
                             "trial 0 complete and trial 1 running")
            browser.evaluate("window.__loadedOnce = 'still the same document'")
            updates = int(browser.evaluate("document.body.dataset.updates"))
            assert not any(s.startswith("2:") for s in browser.evaluate(states))  # trial 2 waits for trial 1
            (tmp_path / "go.1").write_text("go\n")
            browser.wait_for(f"(s => s.includes('1:complete') && s.includes('2:running'))({states})",
                             "trial 1 complete and trial 2's new row, running")
            assert browser.evaluate("window.__loadedOnce") == "still the same document", "the page was reloaded"
            assert int(browser.evaluate("document.body.dataset.updates")) > updates
            browser.wait_for("document.querySelectorAll('#chart-parallel polyline.line').length === 2 && "
                             "document.querySelector('#study-summary').textContent.includes('budget used: 2/3')",
                             "the charts and summary of two ended trials")
        (tmp_path / "go.2").write_text("go\n")
        run.process.wait(timeout=180)
        assert run.process.returncode == 0, run.output()
    finally:
        run.stop()


DASHBOARD_BENCH = os.path.join(os.path.dirname(HPSEARCH), "dashboard_bench")


@pytest.mark.skipif(not os.access(DASHBOARD_BENCH, os.X_OK), reason=f"{DASHBOARD_BENCH} is not built")
def test_a_large_study_s_compact_charts_highlight_and_name_a_trial(tmp_path):
    """Beyond 100 trials the charts are a few paths naming their trials (data-ids); hovering a row still
    draws that trial on top in every chart, and the pointer over a chart's points names the nearest trial."""
    db = str(tmp_path / "large.db")
    bench = subprocess.run([DASHBOARD_BENCH, "--trials", "120", "--epochs", "3", "--keep", db],
                           capture_output=True, text=True, timeout=300)
    assert bench.returncode == 0, bench.stdout + bench.stderr
    dashboard, url = start_dashboard(tmp_path, "--db", db)
    try:
        with Chromium(str(tmp_path / "chromium.log")) as browser:
            browser.navigate(url)
            browser.wait_for("document.querySelectorAll('#trials tbody tr.trial-row').length === 120 && "
                             "document.querySelector('#chart-parallel svg') && "
                             "document.querySelector('#chart-history svg')", "120 trial rows and the charts")
            for chart in ["history", "curves-val_accuracy", "parallel", "slice-learning_rate"]:
                ids = browser.evaluate(f"Array.from(document.querySelectorAll('#chart-{chart} path[data-ids]'))"
                                       ".flatMap(p => p.getAttribute('data-ids').split(' '))")
                assert len(set(ids)) >= 119, chart  # every trial (the parallel view's best has its own line)
                assert browser.evaluate(f"document.querySelectorAll('#chart-{chart} g.point.complete').length") == 0
            number = browser.evaluate("document.querySelector('#trials tbody tr.trial-row').dataset.trial")
            browser.evaluate(f"document.querySelector('#trials tr[data-trial=\"{number}\"]')"
                             ".dispatchEvent(new MouseEvent('mouseenter'))")
            for chart in ["history", "curves-val_accuracy", "slice-learning_rate"]:
                assert browser.evaluate(f"document.querySelectorAll('#chart-{chart} .overlay.highlight').length") >= 1, chart
            browser.evaluate(f"document.querySelector('#trials tr[data-trial=\"{number}\"]')"
                             ".dispatchEvent(new MouseEvent('mouseleave'))")
            assert browser.evaluate("document.querySelectorAll('#charts .overlay').length") == 0
            # The pointer at a history marker's centre: its subpath opens at the circle's left edge, 4 px left.
            tip = browser.evaluate("""(() => {
                const path = document.querySelector('#chart-history path.points.complete');
                const m = /^M([-\\d.]+),([-\\d.]+)/.exec(path.getAttribute('d'));
                const svg = path.ownerSVGElement, p = svg.createSVGPoint();
                p.x = Number(m[1]) + 4; p.y = Number(m[2]);
                const at = p.matrixTransform(svg.getScreenCTM());
                path.dispatchEvent(new MouseEvent('mousemove', {bubbles: true, clientX: at.x, clientY: at.y}));
                const tip = document.querySelector('.chart-tip');
                return [tip.hidden, tip.textContent, path.getAttribute('data-ids').split(' ')[0]];
            })()""")
            assert tip[0] is False and tip[1].startswith(f"trial {tip[2]} (complete)"), tip
            assert "learning_rate=" in tip[1]
    finally:
        dashboard.stop()
