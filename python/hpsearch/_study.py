"""Studies, asked trials and finished trials."""
import datetime
import math
import os
import threading
import time
import warnings

import grpc

from . import _api
from ._errors import HpsearchError, StudyOver, TrialPruned, _wrap

# Trial states as Optuna names them (TrialState.<name>), from hpsearch's.
_STATE_NAMES = {"WAITING": "WAITING", "RUNNING": "RUNNING", "COMPLETE": "COMPLETE", "PRUNED": "PRUNED",
                "FAILED": "FAIL"}
_TELL_STATES = {"complete": "TRIAL_STATE_COMPLETE", "pruned": "TRIAL_STATE_PRUNED", "fail": "TRIAL_STATE_FAILED",
                "failed": "TRIAL_STATE_FAILED"}


def _enum_value(enum_type, word, field):
    """The value of `enum_type` (a protobuf EnumDescriptor) whose name ends in _WORD, e.g. ("tpe") -> SAMPLER_TYPE_TPE."""
    suffix = "_" + str(word).upper()
    for value in enum_type.values:
        if value.name.endswith(suffix) and not value.name.endswith("_UNSPECIFIED"):
            return value.number
    words = [v.name.split("_")[-1].lower() for v in enum_type.values if not v.name.endswith("_UNSPECIFIED")]
    raise HpsearchError("INVALID_ARGUMENT", f"{field}: unknown value '{word}'; use one of {', '.join(words)}")


def _fill(message, options, field):
    """Sets the fields of `message` from a dict of the study file's keys (enums by their lower-case word)."""
    for key, value in options.items():
        descriptor = message.DESCRIPTOR.fields_by_name.get(key)
        if descriptor is None:
            known = ", ".join(message.DESCRIPTOR.fields_by_name)
            raise HpsearchError("INVALID_ARGUMENT", f"{field}.{key}: no such option (known: {known})")
        if descriptor.enum_type is not None:
            value = _enum_value(descriptor.enum_type, value, f"{field}.{key}")
        try:
            setattr(message, key, value)
        except (TypeError, ValueError) as error:
            raise HpsearchError("INVALID_ARGUMENT", f"{field}.{key}: {error}") from None


def _param_value(api, value, field):
    pv = api.study_pb2.ParamValue()
    if isinstance(value, bool):
        pv.bool_value = value
    elif isinstance(value, int):
        pv.int_value = value
    elif isinstance(value, float):
        pv.double_value = value
    elif isinstance(value, str):
        pv.string_value = value
    else:
        raise HpsearchError("INVALID_ARGUMENT", f"{field}: {value!r} is not a bool, int, float or str")
    return pv


def _python_value(pv):
    kind = pv.WhichOneof("kind")
    return getattr(pv, kind) if kind else None


def build_spec(name, search_space, *, direction="minimize", sampler="tpe", pruner=None, seed=None, n_trials=None):
    """The StudySpec of an ask/tell study (`runner: {type: none}`); see Client.create_study."""
    api = _api()
    study_pb2 = api.study_pb2
    spec = study_pb2.StudySpec(name=name)
    spec.runner.type = study_pb2.RUNNER_TYPE_NONE
    if seed is not None:
        spec.seed = seed
    if n_trials is not None:
        spec.budget.n_trials = n_trials
    else:
        spec.budget.n_trials = 1_000_000
    spec.objective.direction = _enum_value(study_pb2.Direction.DESCRIPTOR, direction, "direction")
    if not isinstance(search_space, dict) or not search_space:
        raise HpsearchError("INVALID_ARGUMENT", "search_space: give a dict of parameters, e.g. "
                                                "{'x': {'type': 'float', 'low': 0, 'high': 1}}")
    for pname, dist in search_space.items():
        field = f"search_space.{pname}"
        if not isinstance(dist, dict) or "type" not in dist:
            raise HpsearchError("INVALID_ARGUMENT", f"{field}: give a dict with a type: float, int or categorical")
        p = spec.search_space.add(name=pname)
        rest = {k: v for k, v in dist.items() if k != "type"}
        kind = dist["type"]
        if kind == "float":
            _fill(p.float_range, rest, field)
        elif kind == "int":
            _fill(p.int_range, rest, field)
        elif kind == "categorical":
            choices = rest.pop("choices", None)
            if rest:
                raise HpsearchError("INVALID_ARGUMENT", f"{field}.{next(iter(rest))}: categorical takes only choices")
            if not choices:
                raise HpsearchError("INVALID_ARGUMENT", f"{field}.choices: give a non-empty list")
            for i, choice in enumerate(choices):
                p.categorical.choices.append(_param_value(api, choice, f"{field}.choices[{i}]"))
        else:
            raise HpsearchError("INVALID_ARGUMENT", f"{field}.type: '{kind}' is not float, int or categorical")
    if sampler is not None:
        options = dict(sampler) if isinstance(sampler, dict) else {"type": sampler}
        _fill(spec.sampler, options, "sampler")
    if pruner is not None:
        options = dict(pruner) if isinstance(pruner, dict) else {"type": pruner}
        _fill(spec.pruner, options, "pruner")
    return spec


def _datetime(unix_ms):
    return datetime.datetime.fromtimestamp(unix_ms / 1000.0) if unix_ms else None


class FrozenTrial:
    """A trial as the coordinator recorded it (Optuna's FrozenTrial, in part).

    number, state ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"), value (None unless complete), params (dict),
    intermediate_values ({step: value} from `Trial.report`), datetime_start, datetime_complete, kind ("search" or
    "final"), attempt, error.
    """

    def __init__(self, message, metric="value"):
        api = _api()
        self.number = message.number
        raw = api.trial_pb2.TrialState.Name(message.state).replace("TRIAL_STATE_", "")
        self.state = _STATE_NAMES.get(raw, raw)
        # As Optuna's: only a complete trial has a value (a pruned one keeps its intermediate values).
        self.value = (message.objective_value
                      if message.HasField("objective_value") and self.state == "COMPLETE" else None)
        self.params = {p.name: _python_value(p.value) for p in message.params}
        self.intermediate_values = {}
        for epoch in message.epochs:
            if metric in epoch.extra:
                self.intermediate_values[epoch.step] = epoch.extra[metric]
        self.datetime_start = _datetime(message.started_unix_ms)
        self.datetime_complete = _datetime(message.ended_unix_ms)
        self.kind = "final" if message.kind == api.trial_pb2.TRIAL_KIND_FINAL else "search"
        self.attempt = message.attempt
        self.error = message.error

    def __repr__(self):
        return f"FrozenTrial(number={self.number}, state={self.state}, value={self.value}, params={self.params})"


class Trial:
    """A trial handed out by `Study.ask`: its `number` and `params`, leased to this client until told.

    Its lease is heartbeated by the client while this process lives; if the process dies, the lease expires and
    the trial goes back to the study for another client.
    """

    def __init__(self, study, spec):
        self.study = study
        self.number = spec.trial_number
        self.params = {p.name: _python_value(p.value) for p in spec.params}
        self.seed = spec.seed
        self.lease_id = spec.lease_id
        self._reports = 0
        self._prune = False

    def report(self, value, step):
        """Reports an intermediate value (e.g. the validation loss after epoch `step`) for the study's pruner.

        Steps must increase. Returns nothing; ask `should_prune()` afterwards.
        """
        api = _api()
        value = float(value)
        if not math.isfinite(value):
            raise HpsearchError("INVALID_ARGUMENT", f"value: {value} is not finite; report finite values only")
        self._reports += 1
        metrics = api.trial_pb2.EpochMetrics(epoch=self._reports, step=int(step))
        metrics.extra[self.study._metric()] = value
        client = self.study._client
        request = api.service_pb2.ReportEpochRequest(lease_id=self.lease_id, worker_id=client._holder,
                                                     metrics=metrics)
        reply = client._call(client._workers.ReportEpoch, request)
        self._prune = reply.decision == api.service_pb2.EPOCH_DECISION_PRUNE

    def should_prune(self):
        """True when the study's pruner said, at the last `report`, that this trial should stop."""
        return self._prune

    def suggest_float(self, name, *args, **kwargs):
        """The value of parameter `name` (declared up front in the search space; the range arguments are ignored)."""
        return self._param(name)

    suggest_int = suggest_float
    suggest_categorical = suggest_float

    def _param(self, name):
        if name not in self.params:
            raise HpsearchError("INVALID_ARGUMENT", f"parameter '{name}' is not in the study's search space "
                                                    f"({', '.join(self.params)}); declare it in create_study")
        return self.params[name]

    def __repr__(self):
        return f"Trial(number={self.number}, params={self.params})"


class Study:
    """A study on the coordinator. Thread-safe: ask and tell from many threads."""

    def __init__(self, client, study_id, name):
        self._client = client
        self.study_id = study_id
        self.study_name = name
        self._asked = {}  # number -> Trial, asked by this object and not told yet
        self._lock = threading.Lock()
        self._metric_name = None
        self._minimize = None

    # -------------------------------------------------------------------------------------------- ask/tell
    def ask(self, include_final=False, wait=30.0):
        """Leases the next trial. Raises StudyOver when none is left: FAILED_PRECONDITION when the study ended,
        OUT_OF_RANGE when its budget is spent.

        While every remaining trial of the budget is running elsewhere, waits up to `wait` seconds for one to
        come back (a dead client's lease expiring) or the study to end, before raising OUT_OF_RANGE; while
        budget.parallelism trials run, waits until one ends. include_final: also hand out the study's final
        trial (only studies with a final stage have one).
        """
        api = _api()
        client = self._client
        request = api.service_pb2.AskRequest(study=self.study_id, client_name=client.client_name,
                                             include_final=include_final)
        delay = 0.005
        deadline = time.monotonic() + wait
        while True:
            if client._closed:
                raise HpsearchError("FAILED_PRECONDITION", "this client is closed")
            try:
                spec = client._studies.Ask(request, timeout=30)
                break
            except grpc.RpcError as error:
                code = error.code()
                passing = code == grpc.StatusCode.UNAVAILABLE and "parallelism" in (error.details() or "")
                spent = code == grpc.StatusCode.OUT_OF_RANGE and time.monotonic() < deadline
                if not (passing or spent):
                    raise _wrap(error, over=True) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        trial = Trial(self, spec)
        client._leases.add(spec.lease_id, spec.heartbeat_interval_ms / 1000.0)
        with self._lock:
            self._asked[trial.number] = trial
        return trial

    def tell(self, trial, value=None, state="complete", error=None):
        """Ends a trial this client asked for: state "complete" with its objective `value`, "pruned" or "fail".

        `trial` is a Trial or its number. A second tell of the same trial returns it again when it repeats the
        first, else raises HpsearchError FAILED_PRECONDITION naming the first. Returns the FrozenTrial.
        """
        api = _api()
        if isinstance(value, (list, tuple)):  # Optuna's `values`
            if len(value) != 1:
                raise HpsearchError("INVALID_ARGUMENT", "value: hpsearch studies have one objective")
            value = value[0]
        state_word = getattr(state, "name", state)
        state_name = _TELL_STATES.get(str(state_word).lower())
        if state_name is None:
            raise HpsearchError("INVALID_ARGUMENT", f"state: '{state}' is not complete, pruned or fail")
        if isinstance(trial, Trial):
            number, lease_id = trial.number, trial.lease_id
        else:
            number = int(trial)
            with self._lock:
                asked = self._asked.get(number)
            if asked is None:
                raise HpsearchError("NOT_FOUND", f"trial {number} was not asked by this client")
            lease_id = asked.lease_id
        request = api.service_pb2.TellRequest(lease_id=lease_id, client_name=self._client.client_name,
                                              state=api.trial_pb2.TrialState.Value(state_name),
                                              error=error or "")
        if value is not None:
            request.value = float(value)
        told = self._client._call(self._client._studies.Tell, request)
        self._client._leases.remove(lease_id)
        with self._lock:
            self._asked.pop(number, None)
        return FrozenTrial(told, self._metric())

    def optimize(self, objective, n_trials=None, timeout=None, n_jobs=1, catch=()):
        """Runs `objective(trial) -> float` on asked trials until n_trials were run here, `timeout` seconds passed,
        or the study is over (its budget spent), in `n_jobs` threads (-1: one per CPU).

        An objective raising TrialPruned ends its trial PRUNED. Any other exception fails the trial and is
        re-raised (the other jobs stop after their current trial), unless its class is in `catch`: then the trial
        fails and the loop goes on. A None or non-finite return value fails the trial with a warning.
        """
        if n_jobs == -1:
            n_jobs = os.cpu_count() or 1
        if n_jobs < 1:
            raise HpsearchError("INVALID_ARGUMENT", f"n_jobs: {n_jobs}; use at least 1, or -1 for one per CPU")
        catch = tuple(catch) if isinstance(catch, (list, tuple)) else (catch,)
        started = time.monotonic()
        lock = threading.Lock()
        state = {"count": 0, "error": None}
        stop = threading.Event()

        def run_one():
            while not stop.is_set():
                with lock:
                    if n_trials is not None and state["count"] >= n_trials:
                        return
                    state["count"] += 1
                if timeout is not None and time.monotonic() - started >= timeout:
                    return
                try:
                    trial = self.ask()
                except StudyOver:
                    return
                try:
                    value = objective(trial)
                except TrialPruned:
                    self.tell(trial, state="pruned")
                    continue
                except catch as error:
                    self.tell(trial, state="fail", error=f"{type(error).__name__}: {error}")
                    continue
                except BaseException as error:
                    self.tell(trial, state="fail", error=f"{type(error).__name__}: {error}")
                    with lock:
                        if state["error"] is None:
                            state["error"] = error
                    stop.set()
                    return
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    number = None
                if number is None or not math.isfinite(number):
                    warnings.warn(f"trial {trial.number} returned {value!r}, not a finite number: told as failed")
                    self.tell(trial, state="fail", error=f"the objective returned {value!r}")
                    continue
                self.tell(trial, number)

        if n_jobs == 1:
            run_one()
        else:
            threads = [threading.Thread(target=run_one, name=f"hpsearch-optimize-{i}") for i in range(n_jobs)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if state["error"] is not None:
            raise state["error"]

    # ---------------------------------------------------------------------------------------------- reading
    def _spec(self):
        api = _api()
        return self._client._call(self._client._studies.GetStudy,
                                  api.service_pb2.GetStudyRequest(study=self.study_id))

    def _metric(self):
        if self._metric_name is None:
            study = self._spec()
            self._metric_name = study.spec.objective.metric or "value"
            self._minimize = study.spec.objective.direction == _api().study_pb2.DIRECTION_MINIMIZE
        return self._metric_name

    @property
    def direction(self):
        """"minimize" or "maximize"."""
        self._metric()
        return "minimize" if self._minimize else "maximize"

    @property
    def state(self):
        """The study's state: "searching", "finalizing", "complete", "failed" or "cancelled"."""
        api = _api()
        return api.trial_pb2.StudyState.Name(self._spec().state).replace("STUDY_STATE_", "").lower()

    @property
    def trials(self):
        """Every trial of the study (FrozenTrial), by number."""
        api = _api()
        metric = self._metric()
        reply = self._client._call(self._client._studies.ListTrials,
                                   api.service_pb2.ListTrialsRequest(study=self.study_id))
        return [FrozenTrial(t, metric) for t in reply.trials]

    @property
    def best_trial(self):
        """The best COMPLETE search trial so far. ValueError when none has completed (as Optuna)."""
        best = None
        for trial in self.trials:
            if trial.kind != "search" or trial.state != "COMPLETE" or trial.value is None:
                continue
            if best is None or (trial.value < best.value if self._minimize else trial.value > best.value):
                best = trial
        if best is None:
            raise ValueError(f"study '{self.study_name}' has no complete trial yet")
        return best

    @property
    def best_value(self):
        return self.best_trial.value

    @property
    def best_params(self):
        return self.best_trial.params

    def trials_dataframe(self):
        """The trials as a pandas DataFrame with Optuna's column names: number, value, datetime_start,
        datetime_complete, duration, params_<name>..., state."""
        import pandas as pd
        trials = self.trials
        names = []
        for trial in trials:
            for name in trial.params:
                if name not in names:
                    names.append(name)
        rows = []
        for t in trials:
            row = {"number": t.number, "value": t.value, "datetime_start": t.datetime_start,
                   "datetime_complete": t.datetime_complete,
                   "duration": (t.datetime_complete - t.datetime_start
                                if t.datetime_start and t.datetime_complete else None)}
            for name in names:
                row[f"params_{name}"] = t.params.get(name)
            row["state"] = t.state
            rows.append(row)
        columns = ["number", "value", "datetime_start", "datetime_complete", "duration",
                   *[f"params_{n}" for n in names], "state"]
        return pd.DataFrame(rows, columns=columns)

    def wait(self, timeout=None, poll=0.5):
        """Blocks until the study ends (complete, failed or cancelled) and returns its state; for studies run by
        workers. TimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.state
            if state in ("complete", "failed", "cancelled"):
                return state
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"study '{self.study_name}' is still {state} after {timeout}s")
            time.sleep(poll)

    def watch(self):
        """Yields the study's events (StudyEvent messages: a study snapshot, trial changes, epochs) as they
        happen, until the study ends."""
        api = _api()
        stream = self._client._studies.WatchStudy(api.service_pb2.WatchStudyRequest(study=self.study_id))
        try:
            for event in stream:
                yield event
                if event.HasField("study") and event.study.state in (
                        api.trial_pb2.STUDY_STATE_COMPLETE, api.trial_pb2.STUDY_STATE_FAILED,
                        api.trial_pb2.STUDY_STATE_CANCELLED):
                    return
        except grpc.RpcError as error:
            raise _wrap(error) from None
        finally:
            stream.cancel()

    def cancel(self, reason="cancelled from Python"):
        api = _api()
        self._client._call(self._client._studies.CancelStudy,
                           api.service_pb2.CancelStudyRequest(study=self.study_id, reason=reason))

    def __repr__(self):
        return f"Study(name={self.study_name!r}, id={self.study_id!r})"
