"""hpsearch.submit of a command study run by a real hpsearch-worker, whose trial script reports through
hpsearch.trial_context(); study.wait and study.watch follow it; load_results reads its final trial."""
import os
import subprocess
import textwrap

import hpsearch

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRIAL = textwrap.dedent(f"""
    import sys
    sys.path.insert(0, {PACKAGE!r})
    import hpsearch
    ctx = hpsearch.trial_context()
    x = ctx.params["x"]
    for epoch in (1, 2):
        ctx.epoch(epoch, train_loss=1.0 / epoch, score=(x - 0.3) ** 2 + 0.01 / epoch, step=10 * epoch)
    if ctx.kind == "final":
        ctx.train_summary(global_steps=20, train_loss=0.5, runtime_seconds=0.01, samples_per_second=100.0,
                          steps_per_second=10.0, total_flos=0.0, epochs=2.0)
""")

STUDY = """
name: via-workers
data: {train_file: train.csv}
runner: {type: command, command: [/usr/bin/python3, trial.py]}
search_space:
  x: {type: float, low: 0.0, high: 1.0}
objective: {metric: score, direction: minimize}
budget: {n_trials: 3}
final_stage: {evaluate_test: false}
"""


def test_submit_a_study_file_that_workers_run(tmp_path):
    (tmp_path / "trial.py").write_text(TRIAL)
    (tmp_path / "train.csv").write_text("text,label\nhello,a\nbye,b\n")
    (tmp_path / "study.yaml").write_text(STUDY)
    (tmp_path / "bad.yaml").write_text("name: bad\nrunner: none\nsearch_space:\n  x: {type: float, low: 1, high: 0}\n")
    db = str(tmp_path / "results.db")
    worker_binary = os.path.join(os.path.dirname(hpsearch.find_binary()), "hpsearch-worker")
    with hpsearch.local(db) as client:
        study = hpsearch.submit(str(tmp_path / "study.yaml"), client)
        assert study.study_name == "via-workers"
        worker = subprocess.Popen([worker_binary, "--coordinator", client.address, "--name", "w1",
                                   "--acquire-wait", "1"], stdin=subprocess.DEVNULL,
                                  stdout=open(tmp_path / "worker.log", "wb"), stderr=subprocess.STDOUT)
        try:
            assert study.wait(timeout=120) == "complete", (tmp_path / "worker.log").read_text()
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        kinds = [t.kind for t in study.trials]
        assert kinds == ["search", "search", "search", "final"]
        assert study.best_value == min(t.value for t in study.trials if t.kind == "search")
        events = list(study.watch())  # an ended study: its snapshot, then the stream ends
        assert events and events[0].study.state == hpsearch._api().trial_pb2.STUDY_STATE_COMPLETE
        try:
            hpsearch.submit(str(tmp_path / "bad.yaml"), client)
            raise AssertionError("an invalid study file was submitted")
        except hpsearch.HpsearchError as error:
            assert error.code == "INVALID_ARGUMENT" and "search_space" in error.details
    results = hpsearch.load_results(db)
    assert list(results.final["global_steps"]) == [20]
    assert list(results.epochs["score"].notna()) == [True] * 8
