"""The package's ask/tell API against a real coordinator started by hpsearch.local()."""
import math
import time

import pytest

import hpsearch

SPACE = {
    "x": {"type": "float", "low": -5.0, "high": 5.0},
    "y": {"type": "float", "low": 1e-3, "high": 10.0, "log": True},
    "n": {"type": "int", "low": 1, "high": 8},
    "kind": {"type": "categorical", "choices": ["a", "b", "c"]},
}


def quadratic(params):
    return (params["x"] - 1.0) ** 2 + math.log10(params["y"]) ** 2 + params["n"] + (params["kind"] != "b")


def test_ask_tell_and_the_best_trial(client):
    study = client.create_study("quad", SPACE, sampler="random", seed=3, n_trials=12)
    told = []
    for _ in range(12):
        trial = study.ask()
        assert set(trial.params) == set(SPACE)
        assert -5.0 <= trial.params["x"] <= 5.0 and isinstance(trial.params["n"], int)
        assert trial.params["kind"] in ("a", "b", "c")
        value = quadratic(trial.params)
        frozen = study.tell(trial, value)
        assert frozen.state == "COMPLETE" and frozen.value == value
        told.append((value, trial.number, trial.params))
    best_value, best_number, best_params = min(told, key=lambda t: t[0])
    assert study.best_value == best_value
    assert study.best_trial.number == best_number
    assert study.best_params == best_params
    assert [t.number for t in study.trials] == list(range(12))
    assert study.state == "complete"  # the budget is spent and every trial told
    # The study is over: Ask says so with a non-retryable error.
    with pytest.raises(hpsearch.StudyOver) as over:
        study.ask()
    assert over.value.code == "FAILED_PRECONDITION" and "is complete" in over.value.details


def test_trials_dataframe_has_optunas_columns(client):
    study = client.create_study("frame", SPACE, direction="maximize", n_trials=3)
    study.optimize(quadratic_objective, n_trials=3)
    frame = study.trials_dataframe()
    assert list(frame.columns) == ["number", "value", "datetime_start", "datetime_complete", "duration",
                                   "params_x", "params_y", "params_n", "params_kind", "state"]
    assert list(frame["state"]) == ["COMPLETE"] * 3
    assert frame["value"].max() == study.best_value  # maximised


def quadratic_objective(trial):
    return quadratic(trial.params)


def test_tell_by_number_twice_and_states(client):
    study = client.create_study("states", SPACE, n_trials=4)
    first = study.ask()
    assert study.tell(first.number, 2.5).value == 2.5
    assert study.tell(first, 2.5).value == 2.5  # a repeat gets the trial again
    with pytest.raises(hpsearch.HpsearchError) as second:
        study.tell(first, 3.5)
    assert second.value.code == "FAILED_PRECONDITION"
    assert f"trial {first.number} was already told complete with value 2.5" in second.value.details
    failed = study.ask()
    assert study.tell(failed, state="fail").state == "FAIL"
    pruned = study.ask()
    pruned.report(0.5, step=0)
    assert study.tell(pruned, state="pruned").state == "PRUNED"
    no_value = study.ask()
    with pytest.raises(hpsearch.HpsearchError) as missing:
        study.tell(no_value)
    assert missing.value.code == "INVALID_ARGUMENT" and missing.value.details.startswith("value:")
    assert study.tell(no_value, math.pi).value == math.pi
    # Every trial of the budget was handed out.
    with pytest.raises(hpsearch.StudyOver):
        study.ask()


def test_report_and_should_prune_with_the_median_pruner(client):
    study = client.create_study("pruned", {"x": {"type": "float", "low": 0.0, "high": 1.0}},
                                pruner={"type": "median", "n_startup_trials": 2}, n_trials=4)
    for good in range(2):
        trial = study.ask()
        for step in range(3):
            trial.report(0.1 * step, step)
            assert not trial.should_prune()
        study.tell(trial, 0.2)
    bad = study.ask()
    bad.report(100.0, 0)
    assert bad.should_prune()  # far worse than the median of the finished trials at step 0
    study.tell(bad, state="pruned")
    frozen = [t for t in study.trials if t.number == bad.number][0]
    assert frozen.state == "PRUNED" and frozen.intermediate_values == {0: 100.0}


def test_optimize_reraises_the_objectives_error_unless_caught(client):
    study = client.create_study("errors", SPACE, n_trials=10)

    def flaky(trial):
        if trial.number % 2 == 1:
            raise ArithmeticError(f"odd trial {trial.number}")
        return 1.0

    with pytest.raises(ArithmeticError):
        study.optimize(flaky, n_trials=4)
    states = {t.number: t.state for t in study.trials}
    assert states == {0: "COMPLETE", 1: "FAIL"}
    study.optimize(flaky, n_trials=4, catch=(ArithmeticError,))
    states = [t.state for t in study.trials]
    assert states.count("FAIL") == 3 and states.count("COMPLETE") == 3
    assert "ArithmeticError: odd trial 1" in study.trials[1].error


def test_optimize_with_pruning_and_suggest(client):
    study = client.create_study("suggest", SPACE, n_trials=5)

    def objective(trial):
        x = trial.suggest_float("x", -5, 5)
        if trial.number == 2:
            raise hpsearch.TrialPruned()
        return x * x

    study.optimize(objective)  # until the budget is spent
    assert [t.state for t in study.trials] == ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE", "COMPLETE"]


def test_load_study_and_load_if_exists(client):
    created = client.create_study("again", SPACE, seed=1, n_trials=5)
    trial = created.ask()
    created.tell(trial, 1.0)
    loaded = client.load_study("again")
    assert loaded.study_id == created.study_id and loaded.best_value == 1.0
    resumed = client.create_study("again", SPACE, seed=1, n_trials=5, load_if_exists=True)
    assert resumed.study_id == created.study_id
    with pytest.raises(hpsearch.HpsearchError) as exists:
        client.create_study("again", SPACE, seed=1, n_trials=5)
    assert exists.value.code == "ALREADY_EXISTS"
    with pytest.raises(hpsearch.HpsearchError) as changed:
        client.create_study("again", SPACE, seed=1, n_trials=6, load_if_exists=True)
    assert changed.value.code == "FAILED_PRECONDITION" and "n_trials" in changed.value.details
    assert client.study_names() == ["again"]


def test_errors_name_the_field(client):
    with pytest.raises(hpsearch.HpsearchError) as unknown:
        client.load_study("nothing-here")
    assert unknown.value.code == "NOT_FOUND"
    with pytest.raises(hpsearch.HpsearchError) as bad_range:
        client.create_study("bad", {"lr": {"type": "float", "low": 1.0, "high": 0.1}})
    assert bad_range.value.code == "INVALID_ARGUMENT" and "search_space.lr" in bad_range.value.details
    with pytest.raises(hpsearch.HpsearchError) as bad_type:
        client.create_study("bad", {"lr": {"type": "real", "low": 0, "high": 1}})
    assert "search_space.lr.type" in bad_type.value.details
    with pytest.raises(hpsearch.HpsearchError) as bad_sampler:
        client.create_study("bad", SPACE, sampler="annealing")
    assert bad_sampler.value.details.startswith("sampler.type: unknown value 'annealing'")
    with pytest.raises(hpsearch.HpsearchError) as bad_name:
        client.create_study("bad name!", SPACE)
    assert bad_name.value.code == "INVALID_ARGUMENT" and "name:" in bad_name.value.details


def test_ask_waits_while_the_rest_of_the_budget_runs(client):
    import threading
    study = client.create_study("spent", SPACE, n_trials=2)
    first, second = study.ask(), study.ask()
    with pytest.raises(hpsearch.StudyOver) as spent:
        study.ask(wait=0.2)
    assert spent.value.code == "OUT_OF_RANGE" and "exhausted" in spent.value.details
    outcome = []

    def late_asker():
        try:
            study.ask(wait=60)
        except hpsearch.StudyOver as over:
            outcome.append(over.code)

    waiter = threading.Thread(target=late_asker)
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive() and not outcome  # still waiting: not told OUT_OF_RANGE at once
    study.tell(first, 1.0)
    study.tell(second, 2.0)
    waiter.join(timeout=30)
    assert outcome == ["FAILED_PRECONDITION"]  # then it heard the study ended


def test_a_study_files_text_is_read_by_the_coordinator(client):
    study = client.submit_text("name: from-text\nrunner: none\nsearch_space:\n"
                               "  width: {type: int, low: 1, high: 8}\nbudget: {n_trials: 2}\n")
    assert study.study_name == "from-text" and study.direction == "minimize"
    trial = study.ask()
    assert 1 <= trial.params["width"] <= 8
    with pytest.raises(hpsearch.HpsearchError) as invalid:
        client.submit_text("name: broken\nrunner: none\nsearch_space:\n  lr: {type: float, low: 1, high: 0}\n")
    assert invalid.value.code == "INVALID_ARGUMENT"
    assert "study_file_text:4:" in invalid.value.details and "search_space.lr" in invalid.value.details
