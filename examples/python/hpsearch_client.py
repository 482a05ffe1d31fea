#!/usr/bin/python3
"""Submit a study to an hpsearch coordinator and read its trials through the gRPC API, from Python.

For users whose notebooks live in Python: everything `hpsearch submit`, `status` and `trials` do is an RPC of
hpsearch.v1.StudyService (proto/hpsearch/v1/service.proto), and any gRPC client can make it. This script needs
Debian's python3-grpcio and the protobuf compiler with gRPC's Python plugin (protobuf-compiler and
protobuf-compiler-grpc, which hpsearch's own build uses): the stubs are generated from proto/ into a temporary
folder each time it starts, so they always match the coordinator built from the same tree. Run it with
/usr/bin/python3.

  # a coordinator and a worker (see the README), then:
  /usr/bin/python3 examples/python/hpsearch_client.py submit --n-trials 4 --wait
  /usr/bin/python3 examples/python/hpsearch_client.py trials banking77-sgd-python
  /usr/bin/python3 examples/python/hpsearch_client.py studies

Connection options (before the command), with the same environment fallbacks as hpsearch's programs:
  --coordinator HOST:PORT   default $HPSEARCH_COORDINATOR, else 127.0.0.1:50051
  --auth-token-file FILE    the coordinator's shared secret; default $HPSEARCH_AUTH_TOKEN_FILE
  --tls-ca FILE             PEM CA that signed the coordinator's certificate; set: TLS. Default $HPSEARCH_TLS_CA

`submit` builds a StudySpec in code (the banking77-sgd command study of examples/, a scikit-learn linear
classifier, cheap on any CPU) to show the message's fields; `submit --spec-json FILE` sends a StudySpec written
in protobuf's JSON mapping instead. Paths in a spec sent over gRPC must be absolute: there is no study file for
relative paths to start from.
"""
import argparse
import atexit
import collections
import importlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fail(message):
    sys.exit(f"hpsearch_client: {message}")


def load_api(proto_dir=os.path.join(REPO, "proto")):
    """Generates the Python stubs of proto/ into a temporary folder and imports them."""
    protoc = shutil.which("protoc")
    plugin = shutil.which("grpc_python_plugin")
    if protoc is None or plugin is None:
        fail("protoc or grpc_python_plugin is missing: install Debian's protobuf-compiler and "
             "protobuf-compiler-grpc (scripts/install-deps.sh does)")
    out = tempfile.mkdtemp(prefix="hpsearch-stubs-")
    atexit.register(shutil.rmtree, out, True)
    protos = [os.path.join("hpsearch", "v1", name) for name in ("study.proto", "trial.proto", "service.proto")]
    result = subprocess.run([protoc, f"-I{proto_dir}", f"--python_out={out}", f"--grpc_python_out={out}",
                             f"--plugin=protoc-gen-grpc_python={plugin}", *protos],
                            capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"generating the stubs from {proto_dir} failed:\n{result.stderr}")
    sys.path.insert(0, out)
    api = argparse.Namespace()
    for module in ("study_pb2", "trial_pb2", "service_pb2", "service_pb2_grpc"):
        setattr(api, module, importlib.import_module(f"hpsearch.v1.{module}"))
    return api


def read_token(path):
    """The token in `path`, checked the way hpsearch's programs check it."""
    try:
        mode = os.stat(path).st_mode
        with open(path, encoding="ascii") as handle:
            token = handle.read().strip()
    except FileNotFoundError:
        fail(f"auth token file {path} does not exist: fix --auth-token-file")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"auth token file {path}: {error}")
    if not token:
        fail(f"auth token file {path} is empty: put the coordinator's secret in it")
    if any(c <= " " or c > "~" for c in token):
        fail(f"auth token file {path}: the token holds whitespace or non-printable characters")
    if mode & stat.S_IROTH:
        print(f"hpsearch_client: warning: auth token file {path} is readable by every user: chmod 600 {path}",
              file=sys.stderr)
    return token


class _CallDetails(collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"))):
    pass


def _token_interceptor(grpc, token):
    """A client interceptor adding `authorization: Bearer TOKEN` to every call (plaintext or TLS)."""
    entry = ("authorization", f"Bearer {token}")

    class TokenInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
        def _with_token(self, details):
            return _CallDetails(details.method, details.timeout, list(details.metadata or []) + [entry],
                                details.credentials, details.wait_for_ready, details.compression)

        def intercept_unary_unary(self, continuation, details, request):
            return continuation(self._with_token(details), request)

        def intercept_unary_stream(self, continuation, details, request):
            return continuation(self._with_token(details), request)

    return TokenInterceptor()


def connect(api, address, auth_token_file=None, tls_ca=None):
    """A StudyService stub for the coordinator at `address`, with TLS and the token as asked."""
    try:
        import grpc
    except ImportError:
        fail("python3-grpcio is missing: install Debian's python3-grpcio and run /usr/bin/python3")
    if tls_ca:
        try:
            with open(tls_ca, "rb") as handle:
                roots = handle.read()
        except OSError as error:
            fail(f"--tls-ca {tls_ca}: {error}")
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=roots))
    else:
        channel = grpc.insecure_channel(address)
    if auth_token_file:
        channel = grpc.intercept_channel(channel, _token_interceptor(grpc, read_token(auth_token_file)))
    return api.service_pb2_grpc.StudyServiceStub(channel)


def sgd_study_spec(api, name, n_trials, parallelism, max_epochs):
    """examples/banking77-sgd.yaml, built as a StudySpec message."""
    study = api.study_pb2
    data = os.path.join(REPO, "data", "banking77")
    spec = study.StudySpec(name=name, seed=7, description="banking77-sgd, submitted from Python")
    spec.data.train_file = os.path.join(data, "train.csv")
    spec.data.test_file = os.path.join(data, "test.csv")
    spec.data.text_column = "text"
    spec.data.label_column = "category"
    spec.runner.type = study.RUNNER_TYPE_COMMAND
    spec.runner.command.extend(["/usr/bin/python3", os.path.join(REPO, "examples", "banking77_sgd_trial.py"),
                                "--train", spec.data.train_file, "--test", spec.data.test_file])
    spec.runner.working_dir = os.path.join(REPO, "examples")
    alpha = spec.search_space.add(name="alpha")
    alpha.float_range.low, alpha.float_range.high, alpha.float_range.log = 1e-6, 1e-3, True
    loss = spec.search_space.add(name="loss")
    for choice in ("hinge", "log_loss", "modified_huber"):
        loss.categorical.choices.add(string_value=choice)
    if max_epochs > 1:
        epochs = spec.search_space.add(name="epochs")
        epochs.int_range.low, epochs.int_range.high = 1, max_epochs
    else:  # a range needs low < high: one epoch is a fixed argument of the command instead
        spec.runner.command.extend(["--epochs", "1"])
    spec.objective.metric = "val_accuracy"
    spec.objective.direction = study.DIRECTION_MAXIMIZE
    spec.budget.n_trials = n_trials
    spec.budget.parallelism = parallelism
    spec.budget.max_retries = 1
    spec.final_stage.retrain_on = study.RETRAIN_ON_TRAIN
    return spec


def value_text(value):
    kind = value.WhichOneof("kind")
    return f"{value.double_value:.6g}" if kind == "double_value" else str(getattr(value, kind))


def print_trials(api, stub, study_name):
    study = stub.GetStudy(api.service_pb2.GetStudyRequest(study=study_name), timeout=30)
    trials = stub.ListTrials(api.service_pb2.ListTrialsRequest(study=study.id), timeout=30).trials
    state_name = api.trial_pb2.StudyState.Name(study.state)[len("STUDY_STATE_"):].lower()
    print(f"study {study.spec.name} ({study.id}): {state_name}")
    print(f"{'trial':>5} {'kind':<6} {'state':<9} {'objective':>9}  val_accuracy by epoch | params")
    for trial in trials:
        kind = "final" if trial.kind == api.trial_pb2.TRIAL_KIND_FINAL else "search"
        state = api.trial_pb2.TrialState.Name(trial.state)[len("TRIAL_STATE_"):].lower()
        objective = f"{trial.objective_value:.4f}" if trial.HasField("objective_value") else "-"
        accuracies = " ".join(f"{e.val_accuracy:.4f}" for e in trial.epochs if e.HasField("val_accuracy"))
        params = " ".join(f"{p.name}={value_text(p.value)}" for p in trial.params)
        print(f"{trial.number:>5} {kind:<6} {state:<9} {objective:>9}  {accuracies or '-'} | {params}")
    if study.HasField("best_trial_number"):
        print(f"best: trial {study.best_trial_number} ({study.best_objective_value:.4f}): {study.state_reason}")
    return study


def wait_for_end(api, stub, study_id):
    """Follows WatchStudy until the study ends; returns its final state."""
    final = {api.trial_pb2.STUDY_STATE_COMPLETE, api.trial_pb2.STUDY_STATE_FAILED,
             api.trial_pb2.STUDY_STATE_CANCELLED}
    state = None
    for event in stub.WatchStudy(api.service_pb2.WatchStudyRequest(study=study_id)):
        if event.HasField("study"):
            state = event.study.state
            print(f"study: {api.trial_pb2.StudyState.Name(state)}", file=sys.stderr)
        elif event.HasField("trial"):
            print(f"trial {event.trial.number}: {api.trial_pb2.TrialState.Name(event.trial.state)}",
                  file=sys.stderr)
        if state in final:
            break
    return state


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coordinator", default=os.environ.get("HPSEARCH_COORDINATOR") or "127.0.0.1:50051")
    parser.add_argument("--auth-token-file", default=os.environ.get("HPSEARCH_AUTH_TOKEN_FILE"))
    parser.add_argument("--tls-ca", default=os.environ.get("HPSEARCH_TLS_CA"))
    commands = parser.add_subparsers(dest="command", required=True)
    submit = commands.add_parser("submit", help="submit the banking77-sgd study (or --spec-json FILE)")
    submit.add_argument("--name", default="banking77-sgd-python")
    submit.add_argument("--n-trials", type=int, default=4)
    submit.add_argument("--parallelism", type=int, default=2)
    submit.add_argument("--max-epochs", type=int, default=3)
    submit.add_argument("--spec-json", help="a StudySpec in protobuf's JSON mapping, sent instead")
    submit.add_argument("--wait", action="store_true", help="follow the study, then print its trials")
    trials = commands.add_parser("trials", help="print a study's trials")
    trials.add_argument("study", help="study id or name")
    commands.add_parser("studies", help="list the coordinator's studies")
    args = parser.parse_args()

    api = load_api()
    import grpc
    stub = connect(api, args.coordinator, args.auth_token_file, args.tls_ca)
    try:
        if args.command == "submit":
            if args.spec_json:
                from google.protobuf import json_format
                with open(args.spec_json, encoding="utf-8") as handle:
                    spec = json_format.Parse(handle.read(), api.study_pb2.StudySpec())
            else:
                spec = sgd_study_spec(api, args.name, args.n_trials, args.parallelism, args.max_epochs)
            response = stub.SubmitStudy(api.service_pb2.SubmitStudyRequest(spec=spec), timeout=30)
            for warning in response.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            print(response.study_id, flush=True)
            if args.wait:
                state = wait_for_end(api, stub, response.study_id)
                print_trials(api, stub, response.study_id)
                return 0 if state == api.trial_pb2.STUDY_STATE_COMPLETE else 1
        elif args.command == "trials":
            print_trials(api, stub, args.study)
        else:
            for study in stub.ListStudies(api.service_pb2.ListStudiesRequest(), timeout=30).studies:
                counts = " ".join(f"{k}={v}" for k, v in sorted(study.trial_counts.items()))
                print(f"{study.id} {study.spec.name} "
                      f"{api.trial_pb2.StudyState.Name(study.state)[len('STUDY_STATE_'):].lower()} {counts}")
    except grpc.RpcError as error:
        hint = ""
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            hint = (f" (is the coordinator running at {args.coordinator}? "
                    + ("with TLS signed by --tls-ca?" if args.tls_ca else "if it serves TLS, pass --tls-ca") + ")")
        fail(f"{error.code().name}: {error.details()}{hint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
