"""The command-trial side: a script run by `hpsearch-worker` (runner: command) reads its parameters and reports
its epochs through `hpsearch.trial_context()` instead of printing the JSON-lines protocol by hand."""
import json
import os
import sys


def _parse(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text in ("true", "false"):
        return text == "true"
    return text


class TrialContext:
    """What the worker told this command trial, and a reporter writing hpsearch's JSON lines on stdout.

    params: {name: value} from the HPSEARCH_PARAM_<NAME> variables (numbers parsed; names lower-cased).
    study_name, study_id, number, kind ("search"/"final"), attempt, seed, retrain_on ("train" /
    "train_validation"), evaluate_test (bool), artifact_dir: the other HPSEARCH_* variables.
    """

    def __init__(self, environ=None, out=None):
        env = os.environ if environ is None else environ
        self._out = out if out is not None else sys.stdout
        self.params = {key[len("HPSEARCH_PARAM_"):].lower(): _parse(value)
                       for key, value in env.items() if key.startswith("HPSEARCH_PARAM_")}
        self.study_name = env.get("HPSEARCH_STUDY_NAME", "")
        self.study_id = env.get("HPSEARCH_STUDY_ID", "")
        self.number = int(env.get("HPSEARCH_TRIAL_NUMBER", "0"))
        self.kind = env.get("HPSEARCH_TRIAL_KIND", "search")
        self.attempt = int(env.get("HPSEARCH_ATTEMPT", "1"))
        self.seed = int(env.get("HPSEARCH_SEED", "0"))
        self.retrain_on = env.get("HPSEARCH_RETRAIN_ON", "train")
        self.evaluate_test = env.get("HPSEARCH_EVALUATE_TEST", "1") == "1"
        self.artifact_dir = env.get("HPSEARCH_ARTIFACT_DIR", "")

    def _emit(self, record):
        self._out.write(json.dumps(record) + "\n")
        self._out.flush()

    def epoch(self, epoch, **metrics):
        """Reports epoch `epoch` (1-based): canonical metrics (train_loss, val_loss, val_accuracy, val_f1,
        val_f1_macro, step, samples_per_second) and any other named metric (e.g. the study's objective)."""
        self._emit({"type": "epoch", "epoch": int(epoch), **{k: v for k, v in metrics.items() if v is not None}})

    def train_summary(self, **figures):
        """A final trial's training summary: global_steps, train_loss, runtime_seconds, samples_per_second,
        steps_per_second, total_flos, epochs."""
        self._emit({"type": "train_summary", **figures})

    def test(self, **metrics):
        """A final trial's test metrics: test_loss, test_accuracy, test_f1, test_f1_macro, runtime_seconds,
        samples_per_second, steps_per_second, and any other test_* metric."""
        self._emit({"type": "test", **metrics})


def trial_context():
    """The TrialContext of the command trial this process runs (from its environment)."""
    return TrialContext()
