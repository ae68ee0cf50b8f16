"""tests/apps/harness.py — what the integration tests of fiberio-echo and fiberio-proxy share.

Starts the built programs (and nginx, redis-server) as child processes, reads the ready line, stops every
process it started by its pid (SIGTERM, then SIGKILL), and runs a script's cases, reporting each. Python
standard library only. Every socket a test opens is on 127.0.0.1 or ::1; every port comes from port 0
(our servers print the real one) or from a port-0 probe (nginx, redis cannot print theirs).

A script calls run(cases, needs=[tools]); a missing tool makes the whole script exit 77 (meson: SKIP).
Each wait is bounded; bounds are generous "did not hang" limits, never performance assertions.
"""

import atexit
import hashlib
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

SKIP = 77
ECHO = None   # path of fiberio-echo (argv[1])
PROXY = None  # path of fiberio-proxy (argv[2])

# Sanitizer builds run everything several times slower (tests/apps/meson.build sets FIBERIO_TEST_SLOW there):
# scale the "did not hang" bounds.
SLOW = 4.0 if os.environ.get("FIBERIO_TEST_SLOW") else 1.0

_started = []  # every Popen we started, for the exit handler


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def bound(seconds):
    return seconds * SLOW


# --- processes --------------------------------------------------------------------------------------------

class Server:
    """A started fiberio program: .proc, .address (host, port) from its ready line, .stderr_text()."""

    def __init__(self, proc, stderr_path, ready_line):
        self.proc = proc
        self.pid = proc.pid
        self.stderr_path = stderr_path
        self.ready_line = ready_line
        self.host, self.port = parse_ready(ready_line)

    @property
    def address(self):
        return (self.host, self.port)

    @property
    def hostport(self):
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def stderr_text(self):
        with open(self.stderr_path, "r", errors="replace") as f:
            return f.read()

    def rss_kib(self):
        return status_field(self.pid, "VmRSS")

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, limit=10.0):
        """Sends `sig`, waits up to `limit` s; returns (exit code, seconds). SIGKILLs and fails on a hang."""
        return stop_process(self.proc, sig, limit)


def parse_ready(line):
    prefix = "listening on "
    check(line.startswith(prefix), f"ready line {line!r} does not start with {prefix!r}")
    hostport = line[len(prefix):]
    host, _, port = hostport.rpartition(":")
    if host.startswith("["):
        host = host[1:-1]
    return host, int(port)


def status_field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def _track(proc):
    _started.append(proc)
    return proc


def stop_process(proc, sig=signal.SIGTERM, limit=10.0):
    if proc.poll() is not None:
        return proc.returncode, 0.0
    t0 = time.monotonic()
    os.kill(proc.pid, sig)
    try:
        rc = proc.wait(timeout=bound(limit))
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        raise Failure(f"pid {proc.pid} did not exit within {bound(limit)} s of signal {sig}")
    return rc, time.monotonic() - t0


def _cleanup():
    for proc in _started:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


atexit.register(_cleanup)


def _on_term(signo, frame):
    sys.exit(1)  # runs the atexit handler: meson's timeout must not leave servers behind


signal.signal(signal.SIGTERM, _on_term)


def tmpdir():
    d = tempfile.mkdtemp(prefix="fiberio-apps-")
    atexit.register(shutil.rmtree, d, True)
    return d


_scratch = None


def scratch(name):
    global _scratch
    if _scratch is None:
        _scratch = tmpdir()
    return os.path.join(_scratch, name)


def start(program, *args, env=None, expect_ready=True, limits=None, timeout=10.0):
    """Starts `program args`; with expect_ready, waits for the ready line and returns a Server."""
    stderr_path = scratch(f"stderr-{len(_started)}.txt")
    full_env = dict(os.environ)
    for k in ("FIBERIO_THREADS", "FIBERIO_BACKEND", "FIBERIO_WORK_STEALING", "FIBERIO_STACK_SIZE", "FIBERIO_ACCEPT"):
        full_env.pop(k, None)  # the tests set what they mean
    full_env.update(env or {})
    preexec = None
    if limits:
        import resource

        def preexec():
            for what, value in limits.items():
                resource.setrlimit(what, value)

    with open(stderr_path, "wb") as err:
        proc = _track(subprocess.Popen([program, *map(str, args)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=err, env=full_env, preexec_fn=preexec))
    if not expect_ready:
        return proc, stderr_path
    line = read_line(proc.stdout, bound(timeout))
    if line is None:
        rc = proc.poll()
        with open(stderr_path, errors="replace") as f:
            text = f.read()
        stop_process(proc, signal.SIGKILL)
        raise Failure(f"{os.path.basename(program)} {' '.join(map(str, args))}: no ready line "
                      f"(exit code {rc}); stderr: {text.strip()}")
    return Server(proc, stderr_path, line)


def read_line(stream, limit):
    """One line from a pipe, or None at end of file or after `limit` seconds."""
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    data = b""
    deadline = time.monotonic() + limit
    fd = stream.fileno()
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(left):
            return None
        chunk = os.read(fd, 1)  # byte by byte: never read past the line
        if not chunk:
            return None
        data += chunk
    return data.decode().rstrip("\n")


def run_to_exit(program, *args, env=None, timeout=10.0):
    """Runs a program expected to exit by itself; returns (exit code, stdout, stderr)."""
    full_env = dict(os.environ)
    for k in ("FIBERIO_THREADS", "FIBERIO_BACKEND", "FIBERIO_WORK_STEALING", "FIBERIO_STACK_SIZE", "FIBERIO_ACCEPT"):
        full_env.pop(k, None)
    full_env.update(env or {})
    proc = _track(subprocess.Popen([program, *map(str, args)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=full_env))
    try:
        out, err = proc.communicate(timeout=bound(timeout))
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise Failure(f"{os.path.basename(program)} {' '.join(map(str, args))} did not exit within {bound(timeout)} s")
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (for nginx and redis, which cannot report the port they got)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_connectable(address, limit=10.0, proc=None):
    deadline = time.monotonic() + bound(limit)
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(address, timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def find_tool(name):
    """A program's path: PATH first, then the sbin directories a non-root PATH often lacks (nginx)."""
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        path = os.path.join(d, name)
        if os.access(path, os.X_OK):
            return path
    return None


def start_nginx(root_dir):
    """nginx in the foreground, one process (master_process off), serving root_dir on 127.0.0.1 only."""
    work = tmpdir()
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(work, sub))
    for attempt in range(3):
        port = free_port()
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{port};
    root {root_dir};
  }}
}}
""")
        proc = _track(subprocess.Popen([find_tool("nginx"), "-p", work, "-c", conf, "-e", f"{work}/error.log"],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL))
        if wait_connectable(("127.0.0.1", port), proc=proc):
            return proc, port
        stop_process(proc, signal.SIGKILL)
    with open(os.path.join(work, "error.log"), errors="replace") as f:
        raise Failure("nginx did not start: " + f.read()[-2000:])


def start_redis():
    """redis-server in the foreground on 127.0.0.1 only, no persistence, in a temp dir."""
    work = tmpdir()
    for attempt in range(3):
        port = free_port()
        proc = _track(subprocess.Popen([find_tool("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                        "--appendonly", "no", "--daemonize", "no", "--dir", work,
                                        "--logfile", os.path.join(work, "redis.log"), "--protected-mode", "yes"],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL))
        if wait_connectable(("127.0.0.1", port), proc=proc):
            return proc, port
        stop_process(proc, signal.SIGKILL)
    raise Failure("redis-server did not start")


# --- sockets ----------------------------------------------------------------------------------------------

def connect(address, timeout=10.0):
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(bound(timeout))
    s.connect(address)
    return s


def recv_all(sock):
    """Reads until end of stream."""
    chunks = []
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def exchange_half_close(address, payload, timeout=60.0):
    """Sends payload from a thread, shuts down the write side, reads until the peer closes: the reply."""
    import threading

    sock = connect(address, timeout)
    errors = []

    def send():
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=send)
    t.start()
    try:
        reply = recv_all(sock)
    finally:
        t.join(bound(timeout))
        sock.close()
    check(not errors, f"sending failed: {errors}")
    return reply


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# --- running a script's cases -----------------------------------------------------------------------------

def run(cases, needs=()):
    """argv: ECHO PROXY. Runs each case (a function); exit 0 if all pass, 1 if any fails, 77 if a tool in
    `needs` is missing."""
    global ECHO, PROXY
    if len(sys.argv) < 3:
        print(f"usage: {sys.argv[0]} FIBERIO_ECHO FIBERIO_PROXY", file=sys.stderr)
        sys.exit(2)
    ECHO, PROXY = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    missing = [tool for tool in needs if find_tool(tool) is None]
    if missing:
        print(f"SKIP: missing {', '.join(missing)} (scripts/install-deps.sh installs them)")
        sys.exit(SKIP)
    only = os.environ.get("FIBERIO_TEST_CASE")
    failed = 0
    for case in cases:
        if only and only not in case.__name__:
            continue
        t0 = time.monotonic()
        try:
            note = case()
            print(f"ok   {case.__name__} ({time.monotonic() - t0:.2f} s){' — ' + note if note else ''}", flush=True)
        except Exception as e:  # Failure, an assertion, an OSError: the case failed
            failed += 1
            print(f"FAIL {case.__name__}: {e}", flush=True)
            if not isinstance(e, Failure):
                traceback.print_exc()
        finally:
            _cleanup()
    print(f"{len(cases) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
