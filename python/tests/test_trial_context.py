"""hpsearch.trial_context(): a command trial's parameters and its JSON-lines reporter."""
import io
import json

from hpsearch import TrialContext


def test_trial_context_reads_the_environment_and_writes_json_lines():
    env = {"HPSEARCH_PARAM_ALPHA": "0.001", "HPSEARCH_PARAM_EPOCHS": "3", "HPSEARCH_PARAM_LOSS": "hinge",
           "HPSEARCH_STUDY_NAME": "s", "HPSEARCH_TRIAL_NUMBER": "4", "HPSEARCH_TRIAL_KIND": "final",
           "HPSEARCH_SEED": "46", "HPSEARCH_EVALUATE_TEST": "0", "PATH": "/usr/bin"}
    out = io.StringIO()
    context = TrialContext(environ=env, out=out)
    assert context.params == {"alpha": 0.001, "epochs": 3, "loss": "hinge"}
    assert (context.study_name, context.number, context.kind, context.seed) == ("s", 4, "final", 46)
    assert context.evaluate_test is False
    context.epoch(1, train_loss=0.5, val_accuracy=0.8, val_loss=None, my_metric=2.0)
    context.train_summary(global_steps=10, train_loss=0.4)
    context.test(test_accuracy=0.7)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [{"type": "epoch", "epoch": 1, "train_loss": 0.5, "val_accuracy": 0.8, "my_metric": 2.0},
                     {"type": "train_summary", "global_steps": 10, "train_loss": 0.4},
                     {"type": "test", "test_accuracy": 0.7}]
