#!/usr/bin/python3
"""Makes the screenshots docs/dashboard.md shows (docs/images/dashboard-*.png): a 12-trial command study run
by `hpsearch run` (tests/dashboard/gated_trial.py, nothing gated), its dashboard in headless Chromium, one
PNG per view. Run from the repository root after building:
    /usr/bin/python3 tests/dashboard/make_screenshots.py build/bin/hpsearch docs/images
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chromium_pipe import Chromium  # noqa: E402
from test_dashboard import Background, write_study  # noqa: E402

VIEWS = [  # file, the element shown
    ("dashboard-overview.png", "main > section#studies-section"),
    ("dashboard-summary.png", "#study > section"),
    ("dashboard-trials.png", "#trials"),
    ("dashboard-history.png", "#chart-history"),
    ("dashboard-curves.png", "#chart-curves-val_accuracy"),
    ("dashboard-parallel.png", "#chart-parallel"),
    ("dashboard-slice.png", "#chart-slice-lr"),
    ("dashboard-final.png", "#final-section"),
    ("dashboard-importance.png", "#importance-section"),
    ("dashboard-importance-chart.png", "#chart-importance"),
]


def main():
    hpsearch, out = os.path.abspath(sys.argv[1]), Path(sys.argv[2])
    os.environ["HPSEARCH_BIN"] = hpsearch
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        study = write_study(tmp / "demo.yaml", "demo", n_trials=12, parallelism=2, final_stage=True)
        db = str(tmp / "demo.db")
        subprocess.run([hpsearch, "run", study, "--workers", "2", "--db", db, "--no-dashboard"], check=True,
                       capture_output=True, timeout=600)
        dashboard = Background([hpsearch, "dashboard", "--db", db], str(tmp / "dashboard.log"))
        try:
            url = dashboard.wait_for_line(r"^dashboard: (http\S+)$").group(1)
            with Chromium(str(tmp / "chromium.log"), window="1900,1000") as browser:
                browser.navigate(url)
                browser.wait_for("document.querySelectorAll('#trials tbody tr').length === 13 && "
                                 "document.querySelector('#chart-parallel svg')", "the page")
                for name, selector in VIEWS:
                    browser.screenshot(str(out / name), selector)
                    print(out / name)
        finally:
            dashboard.stop()


if __name__ == "__main__":
    main()
