"""Connections to a coordinator: `connect` to a running one, `local` to start one for the client's life."""
import collections
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import grpc

from . import _api
from ._errors import HpsearchError, _wrap


class _CallDetails(collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"))):
    pass


class _TokenInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds `authorization: Bearer TOKEN` to every call (docs/security.md)."""

    def __init__(self, token):
        self._entry = ("authorization", f"Bearer {token}")

    def _with_token(self, details):
        return _CallDetails(details.method, details.timeout, list(details.metadata or []) + [self._entry],
                            details.credentials, details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)


def _read_token(path):
    """The token in `path`, checked as hpsearch's programs check it."""
    try:
        with open(path, encoding="ascii") as handle:
            token = handle.read().strip()
        mode = os.stat(path).st_mode
    except OSError as error:
        raise HpsearchError("INVALID_ARGUMENT", f"auth_token_file {path}: {error}") from None
    if not token:
        raise HpsearchError("INVALID_ARGUMENT", f"auth_token_file {path} is empty: put the coordinator's secret in it")
    if any(c <= " " or c > "~" for c in token):
        raise HpsearchError("INVALID_ARGUMENT",
                            f"auth_token_file {path}: the token holds whitespace or non-printable characters")
    if mode & stat.S_IROTH:
        print(f"hpsearch: warning: auth token file {path} is readable by every user: chmod 600 {path}",
              file=sys.stderr)
    return token


class _LeaseKeeper:
    """Heartbeats the leases of the trials this client asked for and has not told yet, on one daemon thread.

    While the process lives its trials keep their leases; when it dies the heartbeats stop and each lease expires
    after the coordinator's lease_ttl, sending its trial back to WAITING for another client.
    """

    def __init__(self, client):
        self._client = client
        self._leases = {}  # lease_id -> heartbeat interval (s)
        self._cond = threading.Condition()
        self._closed = False
        self._thread = None

    def add(self, lease_id, interval):
        with self._cond:
            self._leases[lease_id] = max(interval, 0.05)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hpsearch-heartbeat", daemon=True)
                self._thread.start()
            self._cond.notify()

    def remove(self, lease_id):
        with self._cond:
            self._leases.pop(lease_id, None)

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self):
        api = _api()
        while True:
            with self._cond:
                while not self._closed and not self._leases:
                    self._cond.wait()
                if self._closed:
                    return
                interval = min(self._leases.values())
                self._cond.wait(timeout=interval)
                if self._closed:
                    return
                leases = list(self._leases)
            if not leases:
                continue
            request = api.service_pb2.HeartbeatRequest(worker_id=self._client._holder, lease_ids=leases)
            try:
                reply = self._client._workers.Heartbeat(request, timeout=10)
            except grpc.RpcError:
                continue  # the next beat retries; a lease outlives several missed ones
            for lease in reply.leases:
                if lease.order != api.service_pb2.LEASE_ORDER_CONTINUE:
                    self.remove(lease.lease_id)


class Client:
    """A connection to an hpsearch coordinator. Make one with `hpsearch.connect` or `hpsearch.local`.

    Thread-safe: many threads may ask and tell through one client (`Study.optimize(n_jobs=...)` does). Close it
    with `close()` or use it as a context manager; `hpsearch.local`'s coordinator stops with it.
    """

    def __init__(self, channel, address, process=None, workdir=None, client_name=None, auth_token_file=None,
                 tls_ca=None):
        api = _api()
        self._auth_token_file = auth_token_file
        self._tls_ca = tls_ca
        self._channel = channel
        self.address = address
        self._process = process
        self._workdir = workdir
        self._studies = api.service_pb2_grpc.StudyServiceStub(channel)
        self._workers = api.service_pb2_grpc.WorkerServiceStub(channel)
        #: The name this client's Ask and Tell calls carry; its leases are held as "client:<name>".
        self.client_name = client_name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._holder = f"client:{self.client_name}"
        self._leases = _LeaseKeeper(self)
        self._closed = False

    # ------------------------------------------------------------------------------------------- studies
    def create_study(self, name, search_space, *, direction="minimize", sampler="tpe", pruner=None, seed=None,
                     n_trials=None, load_if_exists=False):
        """Creates an ask/tell study (`runner: {type: none}`) and returns it as a `Study`.

        search_space: a dict in the study file's own format, e.g.
            {"lr": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
             "layers": {"type": "int", "low": 1, "high": 4},
             "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]}}
        direction: "minimize" (default, as Optuna's) or "maximize".
        sampler: "tpe" (default), "random", "sobol" or "grid", or a dict of the study file's sampler options
            ({"type": "tpe", "n_startup_trials": 5}).
        pruner: None, "median", "percentile" or "asha", or a dict of pruner options.
        seed: the study seed (trials derive theirs from it). n_trials: the study's budget; None: unbounded
            (1,000,000 trials). load_if_exists: return the existing study of this name when its spec is the same
            (else FAILED_PRECONDITION naming what differs).
        """
        from ._study import Study, build_spec
        spec = build_spec(name, search_space, direction=direction, sampler=sampler, pruner=pruner, seed=seed,
                          n_trials=n_trials)
        api = _api()
        request = api.service_pb2.SubmitStudyRequest(spec=spec, resume_if_exists=load_if_exists)
        reply = self._call(self._studies.SubmitStudy, request)
        return Study(self, reply.study_id, name)

    def load_study(self, name):
        """The existing study `name` (or id). NOT_FOUND (HpsearchError) when there is none."""
        from ._study import Study
        study = self._call(self._studies.GetStudy, _api().service_pb2.GetStudyRequest(study=name))
        return Study(self, study.id, study.spec.name)

    def submit(self, study_yaml_path, *, resume=False):
        """Submits a study file for workers to run, as `hpsearch submit` does (it runs it: the same reader and
        validator, the data files' hashes sent along), and returns the Study. `resume`: resume the study of this
        name when it exists with the same spec and data. HpsearchError INVALID_ARGUMENT with the file's issues
        when it does not validate."""
        from ._study import Study
        argv = [find_binary(), "submit", os.path.abspath(study_yaml_path), "--coordinator", self.address]
        if self._auth_token_file:
            argv += ["--auth-token-file", self._auth_token_file]
        if self._tls_ca:
            argv += ["--tls-ca", self._tls_ca]
        if resume:
            argv.append("--resume")
        result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise HpsearchError("INVALID_ARGUMENT" if result.returncode == 2 else "UNKNOWN",
                                f"hpsearch submit {study_yaml_path} failed:\n{result.stderr.strip()}")
        study_id = result.stdout.strip().splitlines()[-1]
        study = self._call(self._studies.GetStudy, _api().service_pb2.GetStudyRequest(study=study_id))
        return Study(self, study.id, study.spec.name)

    def submit_text(self, study_file_text, *, base_dir=None, resume=False):
        """Submits a study file's text (YAML or JSON); the coordinator reads it with the reader `hpsearch validate`
        uses. Relative paths in it resolve against `base_dir`, an absolute folder on the coordinator's machine.
        Returns the Study; HpsearchError INVALID_ARGUMENT listing the file's issues by line when it is invalid.
        Unlike `submit`, no data hashes are sent (the files may not be on this machine)."""
        from ._study import Study
        api = _api()
        request = api.service_pb2.SubmitStudyRequest(study_file_text=study_file_text, study_file_dir=base_dir or "",
                                                     resume_if_exists=resume)
        reply = self._call(self._studies.SubmitStudy, request)
        study = self._call(self._studies.GetStudy, api.service_pb2.GetStudyRequest(study=reply.study_id))
        return Study(self, study.id, study.spec.name)

    def study_names(self):
        """The names of every study the coordinator holds, oldest first."""
        reply = self._call(self._studies.ListStudies, _api().service_pb2.ListStudiesRequest())
        return [s.spec.name for s in reply.studies]

    # ------------------------------------------------------------------------------------------ plumbing
    def _call(self, method, request, timeout=30):
        if self._closed:
            raise HpsearchError("FAILED_PRECONDITION", "this client is closed")
        try:
            return method(request, timeout=timeout)
        except grpc.RpcError as error:
            raise _wrap(error) from None

    def close(self):
        """Stops heartbeating, closes the channel and stops the coordinator `hpsearch.local` started."""
        if self._closed:
            return
        self._closed = True
        self._leases.close()
        self._channel.close()
        if self._process is not None:
            _stop(self._process)
            self._process = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to report to
            pass


def connect(address, *, auth_token_file=None, tls_ca=None, client_name=None):
    """A `Client` of the coordinator at `address` ("host:port").

    auth_token_file: the coordinator's shared secret (`hpsearch serve --auth-token-file`), sent on every call.
    tls_ca: a PEM file of the CA that signed the coordinator's certificate; set, the channel uses TLS.
    client_name: what this client's leases are held under; default "<host>-<pid>-<random>".
    """
    if tls_ca:
        try:
            with open(tls_ca, "rb") as handle:
                roots = handle.read()
        except OSError as error:
            raise HpsearchError("INVALID_ARGUMENT", f"tls_ca {tls_ca}: {error}") from None
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=roots))
    else:
        channel = grpc.insecure_channel(address)
    if auth_token_file:
        channel = grpc.intercept_channel(channel, _TokenInterceptor(_read_token(auth_token_file)))
    return Client(channel, address, client_name=client_name, auth_token_file=auth_token_file, tls_ca=tls_ca)


def find_binary():
    """The `hpsearch` program: $HPSEARCH_BIN, else `hpsearch` on PATH, else the checkout's build/bin/hpsearch."""
    explicit = os.environ.get("HPSEARCH_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise HpsearchError("NOT_FOUND", f"HPSEARCH_BIN={explicit} is not an executable file")
        return explicit
    on_path = shutil.which("hpsearch")
    if on_path:
        return on_path
    checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "build", "bin", "hpsearch")
    if os.access(checkout, os.X_OK):
        return checkout
    raise HpsearchError("NOT_FOUND", "the hpsearch program is not on PATH, HPSEARCH_BIN is not set and the checkout "
                                     "has no build/bin/hpsearch: build it (scripts/build.sh) or set HPSEARCH_BIN")


def _die_with_parent():
    """In the child, before exec: SIGTERM when the parent dies, so the coordinator never outlives its client."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def local(db_path, *, serve_args=(), startup_timeout=60):
    """A `Client` of a coordinator started for it: `hpsearch serve --db db_path` on a free 127.0.0.1 port.

    The coordinator runs as long as the client (it stops on `close()`, at the end of a `with` block, and with this
    process). `serve_args` adds flags, e.g. ("--lease-ttl", "10"). The program is found through $HPSEARCH_BIN,
    PATH or the checkout's build/bin (see `find_binary`).
    """
    binary = find_binary()
    db_path = os.path.abspath(db_path)
    workdir = tempfile.mkdtemp(prefix="hpsearch-local-")
    log_path = os.path.join(workdir, "serve.log")
    argv = [binary, "serve", "--db", db_path, "--listen", "127.0.0.1:0", *serve_args]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   preexec_fn=_die_with_parent, close_fds=True)
    deadline = time.monotonic() + startup_timeout
    address = None
    try:
        while address is None:
            with open(log_path, "r", encoding="utf-8", errors="replace") as log:
                text = log.read()
            marker = text.find("listening on ")
            if marker >= 0:
                rest = text[marker + len("listening on "):]
                candidate = rest.split()[0] if rest.split() else ""
                if candidate.count(":") == 1 and rest[len(candidate):len(candidate) + 1] in ("\n", " "):
                    address = candidate
                    break
            if process.poll() is not None:
                raise HpsearchError("UNAVAILABLE", f"hpsearch serve exited with status {process.returncode}:\n"
                                                   f"{text[-2000:]}")
            if time.monotonic() > deadline:
                raise HpsearchError("DEADLINE_EXCEEDED",
                                    f"hpsearch serve did not listen within {startup_timeout}s:\n{text[-2000:]}")
            time.sleep(0.02)
    except BaseException:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    channel = grpc.insecure_channel(address)
    return Client(channel, address, process=process, workdir=workdir)
