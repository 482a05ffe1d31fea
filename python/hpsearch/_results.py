"""Reading a results database (`hpsearch serve --db FILE`) straight from SQLite, with no coordinator."""
import collections
import json
import os
import sqlite3

Results = collections.namedtuple("Results", ("trials", "epochs", "final"))
Results.__doc__ = """The trials, epochs and final results of a results database, as pandas DataFrames.

trials: one row per trial: study_name, number, kind ("search"/"final"), state, value (the objective), params_<name>
    columns, datetime_start, datetime_complete, duration, attempt, seed, worker_id, error.
epochs: one row per reported epoch of each trial's current attempt: study_name, number, kind, attempt, epoch,
    the canonical metrics (train_loss, val_loss, val_accuracy, val_f1, val_f1_macro), step, samples_per_second,
    wall_time_seconds, and one column per extra metric.
final: the final trials' training summary and test metrics (docs/results-db.md's final_results), with study_name
    and number.
"""

_TRIALS_SQL = """
SELECT s.name AS study_name, t.trial_id, t.number, t.kind, t.state, t.objective_value AS value, t.attempt, t.seed,
       t.worker_id, t.error, t.started_ms, t.ended_ms
FROM trials t JOIN studies s ON s.study_id = t.study_id
WHERE (? IS NULL OR s.name = ? OR s.study_id = ?)
ORDER BY s.created_ms, t.number"""

_PARAMS_SQL = """
SELECT p.trial_id, p.name, p.type, p.value FROM trial_params p
JOIN trials t ON t.trial_id = p.trial_id JOIN studies s ON s.study_id = t.study_id
WHERE (? IS NULL OR s.name = ? OR s.study_id = ?)
ORDER BY p.trial_id, p.position"""

_EPOCHS_SQL = """
SELECT s.name AS study_name, t.number, t.kind, e.attempt, e.epoch, e.train_loss, e.val_loss, e.val_accuracy,
       e.val_f1, e.val_f1_macro, e.step, e.samples_per_second, e.wall_time_seconds, e.extra
FROM epochs e JOIN trials t ON t.trial_id = e.trial_id AND t.attempt = e.attempt
JOIN studies s ON s.study_id = t.study_id
WHERE (? IS NULL OR s.name = ? OR s.study_id = ?)
ORDER BY s.created_ms, t.number, e.epoch"""

_FINAL_SQL = """
SELECT s.name AS study_name, t.number, f.global_steps, f.train_loss, f.train_runtime_seconds,
       f.train_samples_per_second, f.train_steps_per_second, f.total_flos, f.epochs, f.test_loss, f.test_accuracy,
       f.test_f1, f.test_f1_macro, f.test_runtime_seconds, f.test_samples_per_second, f.test_steps_per_second
FROM final_results f JOIN trials t ON t.trial_id = f.trial_id JOIN studies s ON s.study_id = t.study_id
WHERE (? IS NULL OR s.name = ? OR s.study_id = ?)
ORDER BY s.created_ms, t.number"""


_EPOCH_COLUMNS = ("study_name", "number", "kind", "attempt", "epoch", "train_loss", "val_loss", "val_accuracy",
                  "val_f1", "val_f1_macro", "step", "samples_per_second", "wall_time_seconds")


def _param(kind, value):
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return value


def load_results(db_path, study=None):
    """The trials, epochs and final results stored in `db_path`, as a Results of pandas DataFrames.

    study: a study name or id to keep only its rows; None: every study. Opens the file read-only (a running
    coordinator may go on writing it; WAL lets both proceed). FileNotFoundError when the file does not exist.
    """
    import pandas as pd
    if not os.path.isfile(db_path):
        raise FileNotFoundError(f"results database {db_path} does not exist")
    uri = "file:" + os.path.abspath(db_path) + "?mode=ro"
    connection = sqlite3.connect(uri, uri=True)
    try:
        connection.row_factory = sqlite3.Row
        args = (study, study, study)
        params = collections.defaultdict(dict)
        names = []
        for row in connection.execute(_PARAMS_SQL, args):
            params[row["trial_id"]][row["name"]] = _param(row["type"], row["value"])
            if row["name"] not in names:
                names.append(row["name"])
        trials = []
        for row in connection.execute(_TRIALS_SQL, args):
            start = pd.to_datetime(row["started_ms"], unit="ms") if row["started_ms"] else None
            end = pd.to_datetime(row["ended_ms"], unit="ms") if row["ended_ms"] else None
            record = {"study_name": row["study_name"], "number": row["number"], "kind": row["kind"],
                      "state": row["state"], "value": row["value"]}
            for name in names:
                record[f"params_{name}"] = params[row["trial_id"]].get(name)
            record.update(datetime_start=start, datetime_complete=end,
                          duration=(end - start) if start is not None and end is not None else None,
                          attempt=row["attempt"], seed=row["seed"], worker_id=row["worker_id"], error=row["error"])
            trials.append(record)
        trial_columns = ["study_name", "number", "kind", "state", "value", *[f"params_{n}" for n in names],
                         "datetime_start", "datetime_complete", "duration", "attempt", "seed", "worker_id", "error"]
        epochs = []
        extra_names = []
        for row in connection.execute(_EPOCHS_SQL, args):
            record = {key: row[key] for key in row.keys() if key != "extra"}
            for key, value in json.loads(row["extra"] or "{}").items():
                if key in _EPOCH_COLUMNS:  # an extra metric named like a canonical column keeps both
                    key = "extra_" + key
                if key not in extra_names:
                    extra_names.append(key)
                record[key] = value
            epochs.append(record)
        epoch_columns = [*_EPOCH_COLUMNS, *extra_names]
        cursor = connection.execute(_FINAL_SQL, args)
        final_columns = [d[0] for d in cursor.description]
        final = [dict(row) for row in cursor]
    finally:
        connection.close()
    return Results(pd.DataFrame(trials, columns=trial_columns), pd.DataFrame(epochs, columns=epoch_columns),
                   pd.DataFrame(final, columns=final_columns))
