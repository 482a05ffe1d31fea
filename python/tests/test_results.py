"""hpsearch.load_results reads a finished results database with no coordinator."""
import pytest

import hpsearch


def test_load_results_of_a_finished_database(tmp_path):
    db = str(tmp_path / "results.db")
    with hpsearch.local(db) as client:
        study = client.create_study("stored", {"x": {"type": "float", "low": 0.0, "high": 1.0},
                                               "opt": {"type": "categorical", "choices": ["adam", "sgd"]}},
                                    n_trials=4, seed=5)

        def objective(trial):
            for step in range(3):
                trial.report(trial.params["x"] * (3 - step), step)
            return trial.params["x"]

        study.optimize(objective)
        expected = {t.number: (t.value, t.params) for t in study.trials}
        other = client.create_study("other", {"y": {"type": "int", "low": 0, "high": 3}}, n_trials=1)
        other.tell(other.ask(), 7.0)
    # The coordinator has stopped with the client: read the file alone.
    results = hpsearch.load_results(db, study="stored")
    trials = results.trials
    assert list(trials["number"]) == [0, 1, 2, 3]
    assert set(trials["study_name"]) == {"stored"}
    assert list(trials["state"]) == ["complete"] * 4
    for _, row in trials.iterrows():
        value, params = expected[row["number"]]
        assert row["value"] == value and row["params_x"] == params["x"] and row["params_opt"] == params["opt"]
    assert len(results.epochs) == 12 and list(results.epochs["step"][:3]) == [0, 1, 2]
    assert "value" in results.epochs.columns
    assert results.final.empty
    everything = hpsearch.load_results(db)
    assert sorted(set(everything.trials["study_name"])) == ["other", "stored"]
    assert "params_y" in everything.trials.columns
    with pytest.raises(FileNotFoundError):
        hpsearch.load_results(str(tmp_path / "missing.db"))
