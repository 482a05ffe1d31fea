"""`pip install --no-build-isolation ./python` into a fresh virtual environment with system site packages, offline,
then the installed package (not the checkout) runs an ask/tell study."""
import os
import shutil
import subprocess
import sys

import hpsearch

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

USE = r"""
import os, sys, hpsearch
assert os.path.dirname(hpsearch.__file__).startswith(sys.prefix), hpsearch.__file__
from hpsearch import _stubs
assert _stubs.stub_dir().endswith("_generated"), _stubs.stub_dir()  # generated at install, still current
with hpsearch.local(sys.argv[1]) as client:
    study = client.create_study("installed", {"x": {"type": "int", "low": 0, "high": 9}}, n_trials=3)
    study.optimize(lambda t: t.params["x"])
    print(len(study.trials), study.best_value)
"""


def test_pip_installs_offline_into_a_venv(tmp_path):
    # A copy of python/ and proto/: pip builds in the source tree, which must stay clean.
    source = tmp_path / "src"
    shutil.copytree(os.path.join(CHECKOUT, "python"), source / "python",
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info", "_generated", ".pytest_cache"))
    shutil.copytree(os.path.join(CHECKOUT, "proto"), source / "proto", ignore=shutil.ignore_patterns("*.txt"))
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    result = subprocess.run([python, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                             str(source / "python")], capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    env["HPSEARCH_STUB_CACHE"] = str(tmp_path / "no-cache")  # the installed stubs must be enough
    env["HPSEARCH_BIN"] = os.path.abspath(hpsearch.find_binary())
    used = subprocess.run([python, "-c", USE, str(tmp_path / "results.db")], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path))
    assert used.returncode == 0, used.stdout + used.stderr
    assert used.stdout.split()[0] == "3"
    assert not os.path.exists(tmp_path / "no-cache")
