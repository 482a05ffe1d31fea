"""hpsearch: hyperparameter search with a coordinator, from Python.

    import hpsearch
    with hpsearch.local("results.db") as client:          # starts `hpsearch serve` for the client's life
        study = client.create_study("quadratic", {"x": {"type": "float", "low": -10, "high": 10}})
        study.optimize(lambda trial: (trial.params["x"] - 2) ** 2, n_trials=30)
        print(study.best_params, study.best_value)

Everything runs through the coordinator's gRPC API (proto/hpsearch/v1/service.proto); the stubs are generated from
proto/ with protoc and grpc_python_plugin (see hpsearch._stubs). docs/python.md documents the package.
"""
_MODULES = None


def _api():
    """The generated modules (study_pb2, trial_pb2, service_pb2, service_pb2_grpc) as attributes of one object."""
    global _MODULES
    if _MODULES is None:
        import sys
        import types
        from . import _stubs
        _MODULES = types.SimpleNamespace(**_stubs.load(sys.modules[__name__]))
    return _MODULES


from ._trial_context import trial_context, TrialContext  # noqa: E402  (no gRPC: command trials use it)

# Everything else is imported on first use (PEP 562), so a command trial that only needs trial_context() runs
# where python3-grpcio is not installed.
_LAZY = {"connect": "_client", "local": "_client", "Client": "_client", "find_binary": "_client",
         "Study": "_study", "Trial": "_study", "FrozenTrial": "_study",
         "load_results": "_results", "Results": "_results",
         "HpsearchError": "_errors", "StudyOver": "_errors", "TrialPruned": "_errors"}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hpsearch' has no attribute '{name}'")
    import importlib
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def submit(study_yaml_path, client, *, resume=False):
    """Submits a study file through `client` for workers to run (see Client.submit); returns the Study."""
    return client.submit(study_yaml_path, resume=resume)


__all__ = ["connect", "local", "submit", "load_results", "trial_context", "Client", "Study", "Trial", "FrozenTrial",
           "Results", "TrialContext", "HpsearchError", "StudyOver", "TrialPruned", "find_binary"]
__version__ = "0.1.0"
