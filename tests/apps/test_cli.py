#!/usr/bin/env python3
"""Command line, environment and config file of fiberio-echo and fiberio-proxy (../shared/cli-contract.md):
bad input exits 2 with one line naming the problem (file and line for the file) and listens on nothing;
an address in use exits 1 naming it; --help/--version; precedence flag > environment > file > defaults;
the ready line, IPv6 included.   usage: test_cli.py FIBERIO_ECHO FIBERIO_PROXY"""

import os
import socket

import harness as h
from harness import check


def expect_bad(program, args, must_mention, env=None, code=2):
    rc, out, err = h.run_to_exit(program, *args, env=env)
    name = os.path.basename(program)
    check(rc == code, f"{name} {args} env={env}: exit code {rc}, expected {code}; stderr: {err.strip()}")
    check(out == "", f"{name} {args}: printed on stdout (must listen on nothing): {out!r}")
    lines = err.strip().splitlines()
    check(len(lines) == 1, f"{name} {args}: expected one line on stderr, got {lines}")
    check(must_mention in lines[0], f"{name} {args}: stderr {lines[0]!r} does not mention {must_mention!r}")
    return lines[0]


def write(name, text):
    path = h.scratch(name)
    with open(path, "w") as f:
        f.write(text)
    return path


def startup_line(server):
    """The line each program logs once ready: '... N threads, backend B, work stealing on|off, ...'."""
    for line in server.stderr_text().splitlines():
        if "threads" in line or "thread," in line:
            return line
    raise h.Failure(f"no settings line on stderr: {server.stderr_text()!r}")


def started_with(program, *args, env=None):
    server = h.start(program, *args, env=env)
    try:
        return server, startup_line(server)
    finally:
        rc, _ = server.stop()
        check(rc == 0, f"exit code {rc} after SIGTERM")


# --- cases ------------------------------------------------------------------------------------------------

def bad_flags_exit_2():
    e, p = h.ECHO, h.PROXY
    expect_bad(e, ["--bogus"], "--bogus")
    expect_bad(e, ["--threads", "0"], "--threads")
    expect_bad(e, ["--threads", "abc"], "abc")
    expect_bad(e, ["--threads", "-3"], "--threads")
    expect_bad(e, ["--backend", "kqueue"], "kqueue")
    expect_bad(e, ["--listen", "127.0.0.1:0", "stray"], "stray")
    expect_bad(p, ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--connect-timeout-ms", "x"], "x")
    expect_bad(p, ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--idle-timeout-s", "-1"], "idle")
    expect_bad(p, ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--balance", "random"], "random")
    expect_bad(e, ["--connection-mode", "threads"], "threads")
    expect_bad(e, ["--on-sigquit", "ignore"], "ignore")
    expect_bad(p, ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--connection-mode", "fiber"],
               "--connection-mode")  # an echo setting: the proxy has no such flag


def malformed_addresses_exit_2():
    e, p = h.ECHO, h.PROXY
    expect_bad(e, ["--listen", "127.0.0.1"], "port")
    expect_bad(e, ["--listen", "127.0.0.1:65536"], "65536")
    expect_bad(e, ["--listen", "127.0.0.1:99999"], "99999")
    expect_bad(e, ["--listen", "[::1]"], "port")
    expect_bad(e, ["--listen", "127.0.0.1:7x"], "7x")
    expect_bad(p, ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1"], "port")
    expect_bad(p, ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1,127.0.0.1:70000"], "70000")


def io_uring_serves_or_is_refused_with_its_cause():
    """io_uring where this build has it and the kernel lets this process use it; otherwise exit 2 with one
    line naming the cause and the fix. Never another backend in its place."""
    for args, env in ((["--backend", "io_uring"], None), ([], {"FIBERIO_BACKEND": "io_uring"})):
        proc, stderr_path = h.start(h.ECHO, "--listen", "127.0.0.1:0", *args, env=env, expect_ready=False)
        line = h.read_line(proc.stdout, h.bound(10))
        if line is None:
            rc = proc.wait(timeout=h.bound(10))
            with open(stderr_path, errors="replace") as f:
                err = f.read().strip()
            check(rc == 2, f"io_uring refused with exit code {rc}, expected 2: {err}")
            check(len(err.splitlines()) == 1 and "io_uring" in err and ("use" in err or "allow" in err), err)
            continue
        server = h.Server(proc, stderr_path, line)
        settings = startup_line(server)
        check("backend io_uring" in settings, f"asked for io_uring, got: {settings}")
        payload = bytes(range(256)) * 400
        reply = h.exchange_half_close(server.address, payload)
        check(reply == payload, f"io_uring echo returned {len(reply)} of {len(payload)} bytes")
        server.stop()


def proxy_needs_listen_and_upstream():
    expect_bad(h.PROXY, ["--upstream", "127.0.0.1:1"], "listen")
    expect_bad(h.PROXY, ["--listen", "127.0.0.1:0"], "upstream")
    cfg = write("proxy-no-listen.toml", '[proxy]\nupstreams = ["127.0.0.1:1"]\n')
    expect_bad(h.PROXY, ["--config", cfg], "listen")
    # the [echo] section's listen is not the proxy's
    cfg = write("proxy-echo-listen.toml", '[echo]\nlisten = "127.0.0.1:0"\n[proxy]\nupstreams = ["127.0.0.1:1"]\n')
    expect_bad(h.PROXY, ["--config", cfg], "listen")


def bad_environment_exit_2():
    args = ["--listen", "127.0.0.1:0"]
    expect_bad(h.ECHO, args, "FIBERIO_THREADS", env={"FIBERIO_THREADS": "0"})
    expect_bad(h.ECHO, args, "FIBERIO_THREADS", env={"FIBERIO_THREADS": "many"})
    expect_bad(h.ECHO, args, "FIBERIO_WORK_STEALING", env={"FIBERIO_WORK_STEALING": "maybe"})
    expect_bad(h.ECHO, args, "FIBERIO_BACKEND", env={"FIBERIO_BACKEND": "select"})
    expect_bad(h.PROXY, args + ["--upstream", "127.0.0.1:1"], "FIBERIO_THREADS", env={"FIBERIO_THREADS": "-1"})


def config_file_errors_name_file_and_line():
    e = h.ECHO
    cfg = write("syntax.toml", "[runtime]\nthreads = 2\nbackend = = \"epoll\"\n")
    expect_bad(e, ["--config", cfg], f"{cfg}:3")
    cfg = write("unknown-key.toml", "[runtime]\nthreads = 2\n\n  stack = 65536\n")
    line = expect_bad(e, ["--config", cfg], f"{cfg}:4")
    check("stack" in line, line)
    cfg = write("unknown-section.toml", "[runtime]\nthreads = 1\n[server]\nlisten = \"127.0.0.1:0\"\n")
    line = expect_bad(e, ["--config", cfg], f"{cfg}:3")
    check("server" in line, line)
    cfg = write("top-level.toml", "threads = 2\n")
    line = expect_bad(e, ["--config", cfg], f"{cfg}:1")
    check("threads" in line, line)
    cfg = write("bad-value.toml", "[runtime]\nthreads = 0\n")
    expect_bad(e, ["--config", cfg], f"{cfg}:2")
    cfg = write("bad-type.toml", "[runtime]\nwork_stealing = 3\n")
    expect_bad(e, ["--config", cfg], f"{cfg}:2")
    cfg = write("bad-listen.toml", "[echo]\nlisten = \"127.0.0.1\"\n")
    expect_bad(e, ["--config", cfg], f"{cfg}:2")
    cfg = write("bad-mode.toml", "[echo]\nlisten = \"127.0.0.1:0\"\nconnection_mode = \"stackless\"\n")
    line = expect_bad(e, ["--config", cfg], f"{cfg}:3")
    check("stackless" in line and "idle-loop" in line, line)
    cfg = write("bad-upstream.toml", "[proxy]\nlisten = \"127.0.0.1:0\"\nupstreams = [\"127.0.0.1:1\", \"x\"]\n")
    expect_bad(h.PROXY, ["--config", cfg], f"{cfg}:3")
    cfg = write("proxy-key.toml", "[proxy]\nlisten = \"127.0.0.1:0\"\nupstream = [\"127.0.0.1:1\"]\n")
    line = expect_bad(h.PROXY, ["--config", cfg], f"{cfg}:3")
    check("upstream" in line, line)
    missing = h.scratch("does-not-exist.toml")
    expect_bad(e, ["--config", missing], missing)
    expect_bad(e, ["--config", os.path.dirname(missing)], os.path.dirname(missing))


def hostile_config_files_refused():
    """Config loading is hardened: what is not a small regular file, or is nested deeper than the parser's
    stack allows, is refused with exit 2 at once (no hang, no crash), and input shown in a message can
    neither reach the terminal as control bytes nor flood it."""
    e = h.ECHO
    deep = write("deep.toml", "[" + ".".join(["a"] * 50000) + "]\n")  # crashed the TOML parser (exit 139)
    expect_bad(e, ["--config", deep], f"{deep}:1: nested deeper")
    brackets = write("brackets.toml", "[runtime]\nthreads = " + "[" * 50000 + "\n")
    expect_bad(e, ["--config", brackets], f"{brackets}:2: nested deeper")
    floats = write("floats.toml", "[runtime]\nthreads = [" + ", ".join(["1.5"] * 200) + "]\n")
    expect_bad(e, ["--config", floats], f"{floats}:2: runtime.threads")  # a long array is not deep
    fifo = h.scratch("fifo.toml")
    os.mkfifo(fifo)  # hung for ever, waiting for a writer
    expect_bad(e, ["--config", fifo], "a FIFO")
    expect_bad(e, ["--config", "/dev/zero"], "a character device")  # read until memory ran out
    if os.path.exists("/proc/self/mem"):
        expect_bad(e, ["--config", "/proc/self/mem"], "read error")  # was taken as an empty file
    big = write("big.toml", "#" * (2 << 20) + "\n")
    expect_bad(e, ["--config", big], "at most 1 MiB")
    # A quoted key with an escape sequence, and a huge value: shown escaped, and cut short.
    esc = write("escape.toml", "[runtime]\n\"\\u001b[31mred\" = 1\n")
    line = expect_bad(e, ["--config", esc], f"{esc}:2")
    check("\x1b" not in line and "\\x1b[31mred" in line, f"control byte not escaped: {line!r}")
    c1 = write("c1.toml", "[runtime]\n\"\\u009b31mred\\u00e9\" = 1\n")  # CSI as UTF-8 encodes it; then an e-acute
    line = expect_bad(e, ["--config", c1], f"{c1}:2")
    check("\u009b" not in line and "\\xc2\\x9b31mred\u00e9" in line, f"C1 control not escaped, or UTF-8 mangled: {line!r}")
    long = write("long.toml", "[echo]\nlisten = \"" + "x" * 900_000 + "\"\n")
    line = expect_bad(e, ["--config", long], f"{long}:2")
    check(len(line) < 1200 and "more bytes" in line, f"a 900 kB value was echoed whole ({len(line)} bytes)")


def help_and_version_refuse_what_comes_with_them():
    """--help and --version are answered only for an otherwise valid line, and take no value."""
    e = h.ECHO
    expect_bad(e, ["--bogus", "--version"], "--bogus")  # printed the version and exited 0
    expect_bad(e, ["--version", "--bogus"], "--bogus")
    expect_bad(e, ["--version=8054"], "--version takes no value")
    expect_bad(e, ["--help=x"], "--help takes no value")
    expect_bad(e, ["--help", "--threads", "x"], "--threads")
    rc, out, _ = h.run_to_exit(e, "--threads", "2", "--version")
    check(rc == 0 and out.startswith("fiberio-echo "), f"--threads 2 --version: rc {rc}, stdout {out!r}")


def check_mode_and_the_shipped_example():
    """--check validates everything and exits (0 and a summary on stdout, 2 and the problem on stderr),
    listening on nothing; docs/fiberio.example.toml, the shipped example, passes it for both programs."""
    example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "fiberio.example.toml")
    for program in (h.ECHO, h.PROXY):
        rc, out, err = h.run_to_exit(program, "--config", example, "--check")
        check(rc == 0 and out.startswith("configuration OK: listen "), f"--check of the example: rc {rc}, {out!r} {err!r}")
    rc, out, _ = h.run_to_exit(h.PROXY, "--check", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1,127.0.0.1:2")
    check(rc == 0 and "upstreams 127.0.0.1:1,127.0.0.1:2" in out, f"--check: rc {rc}, {out!r}")
    expect_bad(h.PROXY, ["--check", "--listen", "127.0.0.1:0"], "no upstream")
    cfg = write("check-bad.toml", "[runtime]\nthreads = 0\n")
    expect_bad(h.ECHO, ["--check", "--config", cfg], f"{cfg}:2")


def help_and_version():
    for program in (h.ECHO, h.PROXY):
        rc, out, err = h.run_to_exit(program, "--help")
        check(rc == 0 and "--listen" in out and "--threads" in out, f"--help: rc {rc}, stdout {out[:200]!r}")
        rc, out, err = h.run_to_exit(program, "--version")
        name = os.path.basename(program)
        check(rc == 0 and out.startswith(name + " ") and any(c.isdigit() for c in out),
              f"--version: rc {rc}, stdout {out!r}")


def address_in_use_exits_1():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for mode in ("single", "reuseport"):
            env = {"FIBERIO_ACCEPT": mode}
            line = expect_bad(h.ECHO, ["--listen", f"127.0.0.1:{port}"], f"127.0.0.1:{port}", env=env, code=1)
            check("in use" in line, line)
            expect_bad(h.PROXY, ["--listen", f"127.0.0.1:{port}", "--upstream", "127.0.0.1:1"], f"127.0.0.1:{port}",
                       env=env, code=1)


def second_server_on_same_port_exits_1():
    # Also when both use per-worker SO_REUSEPORT listeners: the port guard must keep the second one out.
    for first_mode in ("single", "reuseport"):
        for second_mode in ("single", "reuseport"):
            first = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2", env={"FIBERIO_ACCEPT": first_mode})
            expect_bad(h.ECHO, ["--listen", first.hostport, "--threads", "2"], first.hostport,
                       env={"FIBERIO_ACCEPT": second_mode}, code=1)
            expect_bad(h.PROXY, ["--listen", first.hostport, "--upstream", "127.0.0.1:1"], first.hostport,
                       env={"FIBERIO_ACCEPT": second_mode}, code=1)
            with h.connect(first.address) as s:  # the first one still serves
                s.sendall(b"still here")
                check(s.recv(100) == b"still here", "first server stopped echoing")
            rc, _ = first.stop()
            check(rc == 0, f"first server exit code {rc}")


def address_not_bindable_exits_1():
    # 192.0.2.1 (TEST-NET-1) is no address of this host: bind() fails with EADDRNOTAVAIL, nothing is sent.
    line = expect_bad(h.ECHO, ["--listen", "192.0.2.1:0"], "192.0.2.1", code=1)
    check("cannot listen" in line, line)


def ready_line_ipv4_and_ipv6():
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0")
    check(server.ready_line == f"listening on 127.0.0.1:{server.port}" and server.port > 0, server.ready_line)
    server.stop()
    if not socket.has_ipv6:
        return "IPv6 not available: only IPv4 checked"
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return "::1 not configured: only IPv4 checked"
    server = h.start(h.ECHO, "--listen", "[::1]:0")
    check(server.ready_line == f"listening on [::1]:{server.port}" and server.port > 0, server.ready_line)
    with h.connect(("::1", server.port)) as s:
        s.sendall(b"six")
        check(s.recv(10) == b"six", "no echo over IPv6")
    rc, _ = server.stop()
    check(rc == 0, f"exit code {rc}")


def default_listen_address():
    # Without --listen and without a file, the echo server listens on 127.0.0.1:7000 — unless that port is
    # taken on this machine, in which case it must exit 1 naming it.
    proc, stderr_path = h.start(h.ECHO, expect_ready=False)
    line = h.read_line(proc.stdout, h.bound(10))
    if line is None:
        proc.wait(timeout=h.bound(10))
        with open(stderr_path) as f:
            err = f.read()
        check(proc.returncode == 1 and "127.0.0.1:7000" in err, f"rc {proc.returncode}, stderr {err!r}")
        return "127.0.0.1:7000 was taken: the exit-1 path was checked instead"
    check(line == "listening on 127.0.0.1:7000", line)
    rc, _ = h.stop_process(proc)
    check(rc == 0, f"exit code {rc}")


def precedence_flag_env_file_default():
    cfg = write("precedence.toml", "[runtime]\nthreads = 3\nwork_stealing = false\nbackend = \"poll\"\n"
                                   "stack_size = 131072\n[echo]\nlisten = \"127.0.0.1:0\"\n")
    # defaults (no file): work stealing on, backend auto
    _, line = started_with(h.ECHO, "--listen", "127.0.0.1:0")
    check("work stealing on" in line and "backend auto" in line, f"defaults: {line}")
    # the file over the defaults
    server, line = started_with(h.ECHO, "--config", cfg)
    check("3 threads" in line and "work stealing off" in line and "backend poll" in line and "128 KiB" in line,
          f"file: {line}")
    check(server.host == "127.0.0.1", server.ready_line)
    # the environment over the file
    env = {"FIBERIO_THREADS": "2", "FIBERIO_WORK_STEALING": "on", "FIBERIO_BACKEND": "epoll"}
    _, line = started_with(h.ECHO, "--config", cfg, env=env)
    check("2 threads" in line and "work stealing on" in line and "backend epoll" in line and "128 KiB" in line,
          f"env over file: {line}")
    # the command line over the environment
    _, line = started_with(h.ECHO, "--config", cfg, "--threads", "1", "--no-steal", "--backend", "poll", env=env)
    check("1 thread," in line and "work stealing off" in line and "backend poll" in line, f"flags over env: {line}")
    _, line = started_with(h.ECHO, "--config", cfg, "--steal", env={"FIBERIO_WORK_STEALING": "0"})
    check("work stealing on" in line, f"--steal over env: {line}")
    # --listen over the file's listen
    server, _ = started_with(h.ECHO, "--config", cfg, "--listen", "127.0.0.1:0")
    check(server.host == "127.0.0.1", server.ready_line)


def work_stealing_env_spellings():
    for text, shown in (("true", "on"), ("false", "off"), ("1", "on"), ("0", "off"), ("on", "on"), ("off", "off")):
        _, line = started_with(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "1",
                               env={"FIBERIO_WORK_STEALING": text})
        check(f"work stealing {shown}" in line, f"FIBERIO_WORK_STEALING={text}: {line}")


def proxy_settings_from_file():
    upstream = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "1")
    cfg = write("proxy.toml", f"[runtime]\nthreads = 2\n[proxy]\nlisten = \"127.0.0.1:0\"\n"
                              f"upstreams = [\"{upstream.hostport}\"]\nconnect_timeout_ms = 500\nidle_timeout_s = 0\n")
    proxy = h.start(h.PROXY, "--config", cfg)
    check("2 threads" in startup_line(proxy), proxy.stderr_text())
    with h.connect(proxy.address) as s:
        s.sendall(b"via file")
        check(s.recv(100) == b"via file", "no echo through the proxy")
    for server in (proxy, upstream):
        rc, _ = server.stop()
        check(rc == 0, f"exit code {rc}")


if __name__ == "__main__":
    h.run([
        bad_flags_exit_2,
        malformed_addresses_exit_2,
        io_uring_serves_or_is_refused_with_its_cause,
        proxy_needs_listen_and_upstream,
        bad_environment_exit_2,
        config_file_errors_name_file_and_line,
        help_and_version,
        check_mode_and_the_shipped_example,
        help_and_version_refuse_what_comes_with_them,
        hostile_config_files_refused,
        address_in_use_exits_1,
        second_server_on_same_port_exits_1,
        address_not_bindable_exits_1,
        ready_line_ipv4_and_ipv6,
        default_listen_address,
        precedence_flag_env_file_default,
        work_stealing_env_spellings,
        proxy_settings_from_file,
    ])
