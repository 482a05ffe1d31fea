"""The errors of the hpsearch package."""


class HpsearchError(Exception):
    """A call the coordinator refused, or a client-side failure.

    `code` is the gRPC status name ("NOT_FOUND", "FAILED_PRECONDITION", ...); `details` the coordinator's message,
    which names the field or object at fault.
    """

    def __init__(self, code, details):
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


class StudyOver(HpsearchError):
    """Ask found no trial to hand out and never will: the study is complete, failed or cancelled
    (FAILED_PRECONDITION), or its budget is spent (OUT_OF_RANGE). Not worth retrying."""


class TrialPruned(Exception):
    """Raise it in an objective (after `trial.should_prune()` said so) to end the trial PRUNED, as Optuna's."""


def _wrap(error, over=False):
    import grpc
    code = error.code().name if isinstance(error, grpc.Call) and error.code() is not None else "UNKNOWN"
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    if over and code in ("FAILED_PRECONDITION", "OUT_OF_RANGE"):
        return StudyOver(code, details)
    return HpsearchError(code, details)
