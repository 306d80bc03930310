"""A Functions host simulator on grpcio: plays the real host towards a language worker.

It listens on a loopback port as the FunctionRpc gRPC server, spawns the worker with the
host's command line and environment (host-protocol.md §2.1), accepts the stream only after a
start_stream with the expected worker id (§3.1), and offers one blocking call per host
request. Every message the worker sends is kept in `received`; protocol violations the real
host would notice are collected in `errors`. See tests/host/README.md.
"""

import datetime
import importlib.util
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from concurrent import futures
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto" / "FunctionRpc.proto"
GEN = Path(__file__).resolve().parent / "_gen"
METHOD = "/AzureFunctionsRpcMessages.FunctionRpc/EventStream"
INT_MAX = 2147483647  # the host's max send/receive length and --grpcMaxMessageLength
TIMEOUT = float(os.environ.get("AZF_HOST_TIMEOUT", "60"))  # generous: loaded 2-core CI, ASan
SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:")


def _load_proto():
    """Compiles proto/FunctionRpc.proto into the git-ignored _gen/ and imports it once."""
    out = GEN / "FunctionRpc_pb2.py"
    if not out.exists() or out.stat().st_mtime < PROTO.stat().st_mtime:
        GEN.mkdir(exist_ok=True)
        tmp = tempfile.mkdtemp(dir=GEN)
        try:
            subprocess.run(
                [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO.parent}", f"--python_out={tmp}", PROTO.name],
                check=True,
            )
            os.replace(Path(tmp) / "FunctionRpc_pb2.py", out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    spec = importlib.util.spec_from_file_location("FunctionRpc_pb2", out)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


pb = _load_proto()
SUCCESS = pb.StatusResult.Status.Value("Success")
FAILURE = pb.StatusResult.Status.Value("Failure")
LOG_USER = pb.RpcLog.RpcLogCategory.Value("User")
LOG_SYSTEM = pb.RpcLog.RpcLogCategory.Value("System")


HALF_CLOSED = "the worker half-closed the stream"


class HostError(AssertionError):
    """A wait that failed (timeout, worker gone, stream closed) or a protocol violation."""


def new_id():
    return str(uuid.uuid4())


def kind(msg):
    """The oneof member set in a StreamingMessage ('worker_init_response', ...) or None."""
    return msg.WhichOneof("content")


def free_port():
    """A loopback port with nothing listening on it (for the 'host unreachable' case)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_dir():
    d = Path(os.environ.get("AZF_BUILD_DIR", "build"))
    return d if d.is_absolute() else ROOT / d


def worker_path():
    """The azfunc-worker of the build under test ($AZF_BUILD_DIR, default build/).

    AZF_WORKER=<path> runs the suite against another executable (e.g. a valgrind wrapper).
    """
    p = Path(os.environ.get("AZF_WORKER") or build_dir() / "bin" / "azfunc-worker")
    if not os.access(p, os.X_OK):
        raise HostError(f"azfunc-worker not found at {p}: build it first (scripts/build.sh), or set AZF_BUILD_DIR")
    return p


def unknown_member(field_number, payload=b"", request_id=""):
    """Serialized StreamingMessage whose content is a field number the schema does not define."""
    head = pb.StreamingMessage(request_id=request_id).SerializeToString()
    return head + _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def field(number, payload):
    """One length-delimited protobuf field (wire type 2), raw."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


# ---------------------------------------------------------------------------------------------
# Function metadata as the host builds it for FunctionLoadRequest


def binding_info(binding):
    """A function.json / raw_bindings binding dict → BindingInfo (enum names case-insensitive)."""
    direction = str(binding.get("direction", "in")).lower()
    data_type = str(binding.get("dataType", "undefined")).lower()
    if data_type not in ("string", "binary", "stream"):
        data_type = "undefined"
    return pb.BindingInfo(type=binding["type"], direction=pb.BindingInfo.Direction.Value(direction),
                          data_type=pb.BindingInfo.DataType.Value(data_type))


def function_json_metadata(app_dir, name):
    """The v1 metadata the host sends for <app_dir>/<name>/function.json (§5.1)."""
    fdir = Path(app_dir) / name
    cfg = json.loads((fdir / "function.json").read_text())
    if cfg.get("scriptFile"):
        script = (fdir / cfg["scriptFile"]).resolve()
    else:
        files = [f for f in fdir.iterdir() if f.is_file() and f.name != "function.json"]
        script = files[0] if len(files) == 1 else fdir / "__init__.py"
    return pb.RpcFunctionMetadata(
        name=name, directory=str(fdir), script_file=str(script), entry_point=cfg.get("entryPoint", ""),
        bindings={b["name"]: binding_info(b) for b in cfg.get("bindings", [])})


def indexed_load_metadata(md):
    """What the host sends back for a worker-indexed function (§3.1): bindings rebuilt from
    raw_bindings, properties copied; raw_bindings, language and function_id left out."""
    raw = [json.loads(r) for r in md.raw_bindings]
    return pb.RpcFunctionMetadata(
        name=md.name, directory=md.directory, script_file=md.script_file, entry_point=md.entry_point,
        is_proxy=md.is_proxy, bindings={b["name"]: binding_info(b) for b in raw}, properties=md.properties)


# ---------------------------------------------------------------------------------------------
# Command line, environment, process


def host_argv(port, worker_id, request_id, *, scheme="http", families=("legacy", "functions"),
              max_message_length=INT_MAX, overrides=None):
    """The host's worker arguments (§2.1), both families in the host's order.

    families selects which families to pass; overrides maps a flag to a different value (e.g.
    {"--port": "1"} to make the legacy family point elsewhere than --functions-uri); "{port}"
    in a value is replaced by the host's port.
    """
    fam = {
        "legacy": ["--host", "127.0.0.1", "--port", str(port), "--workerId", worker_id, "--requestId", request_id,
                   "--grpcMaxMessageLength", str(max_message_length)],
        "functions": ["--functions-uri", f"{scheme}://127.0.0.1:{port}/", "--functions-worker-id", worker_id,
                      "--functions-request-id", request_id, "--functions-grpc-max-message-length",
                      str(max_message_length)],
    }
    argv = [a for f in ("legacy", "functions") if f in families for a in fam[f]]
    for flag, value in (overrides or {}).items():
        argv[argv.index(flag) + 1] = value.replace("{port}", str(port))
    return argv


# AZF_TEST_PYTHON=3.12 runs the workers on that Python with the azure-functions bundled
# with libazfunc, instead of this venv's Python and packages (scripts/test.sh runs the
# invocation suites so on every Python the build found).
TEST_PYTHON = os.environ.get("AZF_TEST_PYTHON") or None
# AZF_TEST_VENV=DIR is then the workers' venv: the app's packages of the streaming and
# OpenTelemetry suites (scripts/app-venvs.sh makes one per Python). Those suites do not
# skip when it is named: a package missing from it fails them.
TEST_VENV = os.environ.get("AZF_TEST_VENV") or None


def host_env(app_dir, worker_dir, extra=None):
    """The worker's environment as the host builds it: its own plus the §2.1 additions.
    A None value in extra removes that variable."""
    env = dict(os.environ)
    env.setdefault("FUNCTIONS_WORKER_RUNTIME", "python")  # an app setting the child inherits
    env["FUNCTIONS_WORKER_DIRECTORY"] = str(worker_dir)
    env["FUNCTIONS_APPLICATION_DIRECTORY"] = str(app_dir)
    env["FUNCTIONS_WORKER_RUNTIME_VERSION"] = TEST_PYTHON or f"{sys.version_info.major}.{sys.version_info.minor}"
    env.setdefault("PYTHON_THREADPOOL_THREAD_COUNT", "1000")
    if TEST_VENV:
        env["VIRTUAL_ENV"] = TEST_VENV
    elif TEST_PYTHON:
        env.pop("VIRTUAL_ENV", None)
    elif sys.prefix != sys.base_prefix:
        # azure-functions ships with the worker; here it lives in the test venv.
        env.setdefault("VIRTUAL_ENV", sys.prefix)
    env.update(extra or {})
    return {k: v for k, v in env.items() if v is not None}


def _default_sigint():
    """Workers start with the default SIGINT disposition, as under a real host, whatever
    this suite inherited: a job started in the background (`cmd &`, nohup, no terminal)
    inherits SIGINT ignored, and exec keeps an ignored signal ignored. A caught signal
    is reset to the default by exec, so catching it here is enough."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


if threading.current_thread() is threading.main_thread():
    _default_sigint()


class WorkerProcess:
    """A spawned worker with its stdout/stderr collected line by line."""

    def __init__(self, argv, cwd, env):
        self.argv = [str(a) for a in argv]
        self.stdout = []
        self.stderr = []
        self.proc = subprocess.Popen(self.argv, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self._readers = [threading.Thread(target=self._read, args=(s, out), daemon=True)
                         for s, out in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(stream, out):
        for line in iter(stream.readline, b""):
            out.append(line.decode("utf-8", "replace").rstrip("\n"))
        stream.close()

    @property
    def returncode(self):
        return self.proc.poll()

    def wait(self, timeout=TIMEOUT):
        """Waits for exit; returns the exit code, or raises HostError if it is still running."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise HostError(f"worker still running after {timeout:.0f}s\n{self.output()}") from None
        for t in self._readers:
            t.join(10)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()

    def text(self):
        """Everything the worker printed so far, stdout then stderr."""
        return "\n".join(self.stdout + self.stderr)

    def assert_clean_exit(self, pattern, timeout=TIMEOUT):
        """Exits by itself with 0, no crash, and says why (a message matching pattern)."""
        rc = self.wait(timeout)
        self.assert_no_crash()
        assert rc == 0, f"worker exited {rc}, expected 0\n{self.output()}"
        assert re.search(pattern, self.text(), re.I), f"no message matching {pattern!r}\n{self.output()}"

    def output(self, last=40):
        return "\n".join(["--- worker stdout:"] + self.stdout[-last:] + ["--- worker stderr:"] + self.stderr[-last:])

    def assert_no_crash(self):
        """Exited by itself (no signal) and without a sanitizer report."""
        rc = self.proc.poll()
        assert rc is not None and rc >= 0, f"worker crashed or was killed (exit {rc})\n{self.output()}"
        assert not SANITIZER_RE.search(self.text()), f"sanitizer report\n{self.output(200)}"

    def assert_error_exit(self, pattern, timeout=TIMEOUT):
        """A clear failure: exits by itself, non-zero, no crash, a message matching pattern."""
        rc = self.wait(timeout)
        self.assert_no_crash()
        assert rc != 0, f"worker exited 0, expected an error\n{self.output()}"
        assert re.search(pattern, self.text(), re.I), f"no message matching {pattern!r}\n{self.output()}"
        return rc


def spawn_worker(port, *, worker=None, app_dir, worker_id, request_id, scheme="http", families=("legacy", "functions"),
                 max_message_length=INT_MAX, overrides=None, extra_args=(), env=None):
    """Starts the worker exactly as the host does: argv (§2.1), env, cwd = app root."""
    exe = [str(worker or worker_path())] if not isinstance(worker, (list, tuple)) else list(worker)
    # Worker arguments from config/app settings come before the host's own (§2.1).
    argv = exe + list(extra_args) + host_argv(port, worker_id, request_id, scheme=scheme, families=families,
                                              max_message_length=max_message_length, overrides=overrides)
    return WorkerProcess(argv, app_dir, host_env(app_dir, Path(exe[-1]).resolve().parent, env))


# ---------------------------------------------------------------------------------------------
# TLS material


class Tls:
    """A CA and a server certificate for `hostname` (an IP or a DNS name), as PEM files in dir.

    self_signed=True makes the server certificate self-signed: not issued by the CA in ca_file.
    """

    def __init__(self, dir, *, hostname="127.0.0.1", self_signed=False):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.timezone.utc)

        def name(cn):
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

        def cert(subject, key, issuer, issuer_key, ca, san=None):
            b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                 .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                 .not_valid_after(now + datetime.timedelta(days=7))
                 .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
            if san:
                b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
            return b.sign(issuer_key, hashes.SHA256())

        pem = serialization.Encoding.PEM
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = cert(name("libazfunc test CA"), ca_key, name("libazfunc test CA"), ca_key, True)
        key = ec.generate_private_key(ec.SECP256R1())
        try:
            san = [x509.IPAddress(ipaddress.ip_address(hostname))]
        except ValueError:
            san = [x509.DNSName(hostname)]
        if self_signed:  # not issued by the CA the worker trusts
            srv = cert(name(hostname), key, name(hostname), key, False, san)
        else:
            srv = cert(name(hostname), key, ca.subject, ca_key, False, san)
        self.ca_pem = ca.public_bytes(pem)
        self.cert_pem = srv.public_bytes(pem)
        self.key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        self.ca_file = Path(dir) / "ca.pem"
        self.ca_file.write_bytes(self.ca_pem)
        (Path(dir) / "server.pem").write_bytes(self.cert_pem)
        (Path(dir) / "server.key").write_bytes(self.key_pem)

    def server_credentials(self):
        return grpc.ssl_server_credentials([(self.key_pem, self.cert_pem)])


# How azfunc-worker is told the CA and told to skip verification (env: AZF_TLS_CA_FILE, AZF_TLS_INSECURE).
TLS_CA_FLAG = "--tls-ca-file"
TLS_INSECURE_FLAG = "--tls-insecure"


# ---------------------------------------------------------------------------------------------
# The host


class Invocation:
    """One InvocationRequest: its response once it arrives, and the User logs routed to it."""

    def __init__(self, host, invocation_id):
        self.host = host
        self.id = invocation_id
        self.response = None  # InvocationResponse
        self.logs = []  # User/CustomMetric RpcLogs received while the invocation was executing

    def wait(self, timeout=None):
        self.host._wait(lambda: self.response is not None, f"invocation_response for {self.id}", timeout)
        return self.response


class Host:
    """The host side of one worker: gRPC server, worker process, conversation.

    Use as a context manager: entering starts the server, spawns the worker and waits for the
    accepted stream (StartStream); leaving closes the stream, waits a little for the worker to
    exit and kills it otherwise.
    """

    def __init__(self, worker=None, *, app_dir, tls=None, families=("legacy", "functions"), overrides=None,
                 extra_args=(), env=None, max_message_length=INT_MAX, host_version="4.1037.0.0",
                 timeout=TIMEOUT):
        self.worker = worker
        self.app_dir = Path(app_dir)
        self.tls = tls
        self.families = families
        self.overrides = overrides
        self.extra_args = list(extra_args)
        if tls is not None:
            self.extra_args += [TLS_CA_FLAG, str(tls.ca_file)]
        self.env = env
        self.max_message_length = max_message_length
        self.host_version = host_version
        self.timeout = timeout
        self.worker_id = new_id()
        self.request_id = new_id()  # the --requestId the worker stamps on what it sends

        self.received = []  # every StreamingMessage from the worker, in order (start_stream included)
        self.errors = []  # protocol violations the host noticed
        self.system_logs = []  # System RpcLogs
        self.dropped_logs = []  # User logs the real host drops: no executing invocation
        self.connected = False  # stream accepted (StartStream with the right worker id)
        self.stream_ended = False  # the worker's side of the stream ended (or the RPC died)
        self.stream_end = None  # how: half-closed by the worker, or the call failed
        self.initialized = False
        self.process = None
        self._cond = threading.Condition()
        self._outbox = []  # messages for the worker; None closes the stream (status, details) aborts it
        self._inbox = {}  # kind -> [StreamingMessage] for one-shot replies
        self._status = {}  # request_id -> StreamingMessage
        self._status_sent = set()  # request ids of the status probes sent
        self._invocations = {}  # invocation_id -> Invocation
        self._reading = threading.Event()
        self._reading.set()
        self.port = None
        self._server = None

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self, wait=True):
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4),
            handlers=[grpc.method_handlers_generic_handler("AzureFunctionsRpcMessages.FunctionRpc", {
                "EventStream": grpc.stream_stream_rpc_method_handler(
                    self._event_stream, request_deserializer=pb.StreamingMessage.FromString,
                    response_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString()),
            })],
            options=[("grpc.max_send_message_length", INT_MAX), ("grpc.max_receive_message_length", INT_MAX)],
        )
        if self.tls is None:
            self.port = self._server.add_insecure_port("127.0.0.1:0")
        else:
            self.port = self._server.add_secure_port("127.0.0.1:0", self.tls.server_credentials())
        self._server.start()
        self.process = spawn_worker(
            self.port, worker=self.worker, app_dir=self.app_dir, worker_id=self.worker_id,
            request_id=self.request_id, scheme="https" if self.tls else "http", families=self.families,
            max_message_length=self.max_message_length, overrides=self.overrides, extra_args=self.extra_args,
            env=self.env)
        threading.Thread(target=self._watch_process, daemon=True).start()
        if wait:
            self.wait_connected()
        return self

    def wait_connected(self, timeout=None):
        """Waits for the accepted stream (the host's 60 s process-start timeout, §2.3)."""
        self._wait(lambda: self.connected, "start_stream", timeout)

    def close(self, grace=TIMEOUT / 2):
        """Ends the stream, gives the worker `grace` seconds to exit, then kills it.

        A worker that had to be killed, crashed or printed a sanitizer report is recorded in
        `errors` (see check()).
        """
        self.close_stream()
        if self.process is not None:
            try:
                self.process.wait(grace)
            except HostError:
                self.process.kill()
                self._error(f"worker still running {grace:.0f}s after the host closed the stream: killed")
            else:
                try:
                    self.process.assert_no_crash()
                except AssertionError as e:
                    self._error(str(e).splitlines()[0])
        if self._server is not None:
            self._server.stop(0).wait(10)

    def close_stream(self, code=None, details=""):
        """Ends the host's side of the stream: OK trailers, or an error status when code is set."""
        with self._cond:
            self._outbox.append(None if code is None else (code, details))
            self._cond.notify_all()

    def stop_server(self):
        """Drops the connection as a host that goes away would (cancels the RPC, closes sockets)."""
        self._server.stop(0).wait(10)

    def kill(self):
        self.process.kill()

    def wait_exit(self, timeout=None):
        """The worker's exit code once it has exited by itself."""
        return self.process.wait(timeout or self.timeout)

    @property
    def exit_code(self):
        return self.process.returncode if self.process else None

    def pause_reading(self):
        """Stop taking messages off the stream, as a host that does not read (back-pressure)."""
        self._reading.clear()

    def resume_reading(self):
        self._reading.set()

    # -- requests -------------------------------------------------------------------------------

    def send_raw(self, msg):
        """Queues any StreamingMessage (or already serialized bytes) for the worker, no checks."""
        with self._cond:
            if not isinstance(msg, bytes) and kind(msg) == "worker_status_request":
                self._status_sent.add(msg.request_id)
            self._outbox.append(msg)
            self._cond.notify_all()

    def send(self, request_id="", **content):
        """send(worker_status_request=pb.WorkerStatusRequest()) → queues that StreamingMessage."""
        self.send_raw(pb.StreamingMessage(request_id=request_id, **content))

    def expect(self, kind_name, timeout=None):
        """The next one-shot reply of that kind (the host matches those by type, §3.1)."""
        with self._cond:
            self._wait(lambda: self._inbox.get(kind_name), kind_name, timeout)
            return self._inbox[kind_name].pop(0)

    def init(self, capabilities=None, worker_directory=None, function_app_directory=None):
        """WorkerInitRequest as the v4 host sends it → WorkerInitResponse."""
        if not self.connected:
            raise HostError("init before StartStream")
        caps = {"MultiStream": "10"} if capabilities is None else capabilities
        self.send(worker_init_request=pb.WorkerInitRequest(
            host_version=self.host_version, capabilities=caps,
            worker_directory=str(worker_directory or self.process_dir()),
            function_app_directory=str(function_app_directory or self.app_dir)))
        resp = self.expect("worker_init_response").worker_init_response
        self.initialized = resp.result.status == SUCCESS
        self.capabilities = dict(resp.capabilities)
        return resp

    def process_dir(self):
        return Path(self.process.argv[0]).resolve().parent

    def metadata(self, function_app_directory=None):
        """FunctionsMetadataRequest → FunctionMetadataResponse (after a successful init)."""
        self._require_init()
        rid = new_id()
        self.send(request_id=rid, functions_metadata_request=pb.FunctionsMetadataRequest(
            function_app_directory=str(function_app_directory or self.app_dir)))
        reply = self.expect("function_metadata_response")
        if reply.request_id != rid:  # §1.2: echoed, like the status reply
            self._error(f"function_metadata_response request_id {reply.request_id!r}, expected {rid!r}")
        return reply.function_metadata_response

    def load(self, function_id, metadata=None, **metadata_fields):
        """FunctionLoadRequest{function_id, metadata} → FunctionLoadResponse."""
        self._require_init()
        md = metadata if metadata is not None else pb.RpcFunctionMetadata(**metadata_fields)
        self.send(function_load_request=pb.FunctionLoadRequest(function_id=function_id, metadata=md))
        return self.expect("function_load_response").function_load_response

    def reload_environment(self, environment, function_app_directory=None):
        """FunctionEnvironmentReloadRequest (placeholder specialization, §3.8) → its response."""
        self.send(function_environment_reload_request=pb.FunctionEnvironmentReloadRequest(
            environment_variables=environment, function_app_directory=str(function_app_directory or self.app_dir)))
        return self.expect("function_environment_reload_response").function_environment_reload_response

    def load_function_json(self, name, function_id=None):
        """Loads the v1 function <app>/<name> the way the host does → FunctionLoadResponse."""
        return self.load(function_id or new_id(), function_json_metadata(self.app_dir, name))

    def load_indexed(self, metadata_response):
        """One FunctionLoadRequest per worker-indexed function → {function_id: FunctionLoadResponse}."""
        out = {}
        for md in metadata_response.function_metadata_results:
            out[md.function_id] = self.load(md.function_id, indexed_load_metadata(md))
        return out

    def start_invocation(self, function_id=None, input_data=(), trigger_metadata=None, invocation_id=None,
                         trace_context=None, retry_context=None, request=None):
        """Sends an InvocationRequest (built here, or `request` as is) and returns its Invocation."""
        self._require_init()
        if request is None:
            request = pb.InvocationRequest(
                invocation_id=invocation_id or new_id(), function_id=function_id, input_data=list(input_data),
                trigger_metadata=trigger_metadata or {}, trace_context=trace_context or pb.RpcTraceContext(),
                retry_context=retry_context)
        inv = Invocation(self, request.invocation_id)
        with self._cond:
            if inv.id in self._invocations:
                raise HostError(f"invocation id {inv.id} reused")
            self._invocations[inv.id] = inv
        self.send(invocation_request=request)
        return inv

    def start_raw_invocation(self, invocation_id, message_bytes):
        """Sends serialized StreamingMessage bytes (e.g. one no protobuf library would build)
        as the InvocationRequest of invocation_id, and returns its Invocation."""
        self._require_init()
        inv = Invocation(self, invocation_id)
        with self._cond:
            if inv.id in self._invocations:
                raise HostError(f"invocation id {inv.id} reused")
            self._invocations[inv.id] = inv
        self.send_raw(message_bytes)
        return inv

    def invoke(self, function_id, input_data=(), **kw):
        """InvocationRequest → Invocation (with .response and .logs), waiting for the response."""
        inv = self.start_invocation(function_id, input_data, **kw)
        inv.wait()
        return inv

    def status(self, timeout=None):
        """A WorkerStatusRequest with a fresh GUID request_id; the reply must echo it."""
        rid = new_id()
        self.send(request_id=rid, worker_status_request=pb.WorkerStatusRequest())
        with self._cond:
            self._wait(lambda: rid in self._status, f"worker_status_response with request_id {rid}", timeout)
            return self._status.pop(rid).worker_status_response

    def status_burst(self, n, wait=True):
        """n WorkerStatusRequests in flight at once; returns their ids (after every reply if wait)."""
        rids = [new_id() for _ in range(n)]
        for rid in rids:
            self.send(request_id=rid, worker_status_request=pb.WorkerStatusRequest())
        if wait:
            self.wait_status(rids)
        return rids

    def wait_status(self, rids, timeout=None):
        """Waits for the replies to these status request ids."""
        self.wait_for(lambda: all(r in self._status for r in rids), f"{len(rids)} status replies", timeout)

    def terminate(self, grace_seconds=5):
        """WorkerTerminate{grace_period} (None: unset); returns the exit code once the worker exited.

        Like the host, waits the grace period (plus slack for a loaded machine) and then
        raises; close() kills it afterwards.
        """
        grace = None if grace_seconds is None else pb.Duration(seconds=grace_seconds)
        self.send(worker_terminate=pb.WorkerTerminate(grace_period=grace))
        return self.process.wait((grace_seconds or 5) + self.timeout / 2)

    # -- logs -----------------------------------------------------------------------------------

    @property
    def logs(self):
        return [m.rpc_log for m in self.received if kind(m) == "rpc_log"]

    def check(self):
        """Raises if the host noticed protocol violations."""
        if self.errors:
            raise HostError("protocol violations:\n  " + "\n  ".join(self.errors))

    # -- internals ------------------------------------------------------------------------------

    def _require_init(self):
        if not self.initialized:
            raise HostError("the host sends this only after a successful WorkerInitResponse")

    def wait_for(self, pred, what, timeout=None):
        """Waits until pred() holds (checked under the host's lock as messages arrive)."""
        self._wait(pred, what, timeout)

    def _wait(self, pred, what, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        with self._cond:
            if self._cond.wait_for(lambda: pred() or self.stream_ended or self._exited(), timeout):
                # After an exit, let the reader drain what the worker sent before it went away.
                if self.connected and self._cond.wait_for(lambda: pred() or self.stream_ended, 10) and pred():
                    return
                why = f"the stream ended ({self.stream_end})" if self.stream_ended else \
                    f"the worker exited ({self.exit_code})"
                raise HostError(f"waiting for {what}: {why}\n{self._context()}")
            raise HostError(f"timed out after {timeout:.0f}s waiting for {what}\n{self._context()}")

    def _exited(self):
        return self.process is not None and self.process.returncode is not None

    def _context(self):
        got = ", ".join(kind(m) or "?" for m in self.received[-10:])
        errs = "".join(f"\nhost error: {e}" for e in self.errors)
        return f"last received: [{got}]{errs}\n{self.process.output() if self.process else ''}"

    def _watch_process(self):
        self.process.proc.wait()
        with self._cond:
            self._cond.notify_all()

    def _event_stream(self, requests, context):
        """The FunctionRpc.EventStream servicer: checks StartStream, then pumps both ways."""
        try:
            first = next(requests)
        except (StopIteration, grpc.RpcError):
            self._error("stream ended before any message")
            return
        if kind(first) != "start_stream" or first.start_stream.worker_id != self.worker_id:
            self._error(f"stream rejected: first message {kind(first)} with worker_id "
                        f"{first.start_stream.worker_id!r}, expected start_stream with {self.worker_id!r}")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected StartStream with a known worker id")
        with self._cond:
            if self.connected:  # the host supports no re-registration
                self._error("a second stream with the same worker id")
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "worker already connected")
            self.connected = True
            self.received.append(first)
            self._cond.notify_all()
        threading.Thread(target=self._read, args=(requests,), daemon=True).start()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._outbox or self.stream_ended or not context.is_active(), 0.5)
                if self.stream_end == HALF_CLOSED:
                    return  # like the host's EventStream: the worker's end completes the call (OK)
                if not self._outbox:
                    if not context.is_active():
                        return
                    continue
                msg = self._outbox.pop(0)
            if msg is None:
                return
            if isinstance(msg, tuple):
                context.abort(*msg)
            yield msg

    def _read(self, requests):
        try:
            for msg in requests:
                self._reading.wait()
                self._on_message(msg)
            self.stream_end = HALF_CLOSED
        except grpc.RpcError as e:
            self.stream_end = f"the call failed: {e!r}"
        finally:
            with self._cond:
                self.stream_ended = True
                self._cond.notify_all()

    def _on_message(self, msg):
        k = kind(msg)
        with self._cond:
            self.received.append(msg)
            if k == "rpc_log":
                log = msg.rpc_log
                if log.log_category == LOG_SYSTEM:
                    self.system_logs.append(log)
                else:
                    inv = self._invocations.get(log.invocation_id)
                    (inv.logs if inv is not None and inv.response is None else self.dropped_logs).append(log)
            elif k == "worker_status_response":
                if msg.request_id not in self._status_sent:
                    self._error(f"worker_status_response with request_id {msg.request_id!r} matches no probe")
                self._status[msg.request_id] = msg
            elif k == "invocation_response":
                inv = self._invocations.get(msg.invocation_response.invocation_id)
                if inv is None:
                    self._error(f"invocation_response for unknown invocation {msg.invocation_response.invocation_id!r}")
                elif inv.response is not None:
                    self._error(f"second invocation_response for {inv.id}")
                else:
                    inv.response = msg.invocation_response
            elif k == "start_stream":
                self._error("start_stream after the stream was accepted")
            elif k is None:
                self._error("message with no content")
            else:
                self._inbox.setdefault(k, []).append(msg)
            self._cond.notify_all()

    def _error(self, text):
        with self._cond:
            self.errors.append(text)
            self._cond.notify_all()
