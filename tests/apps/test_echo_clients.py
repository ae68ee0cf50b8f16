#!/usr/bin/env python3
"""fiberio-echo with real third-party clients, socat and nc (netcat-openbsd): bytes come back unchanged and
in order, a large payload with half-close, several clients at once, IPv6.
usage: test_echo_clients.py FIBERIO_ECHO FIBERIO_PROXY"""

import os
import subprocess
import threading

import harness as h
from harness import check


def payload_file(name, size):
    path = h.scratch(name)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(os.urandom(size))
    return path


def client(argv, stdin_path, timeout=60):
    """Runs a client with stdin from a file; returns its stdout (bytes)."""
    with open(stdin_path, "rb") as stdin:
        proc = subprocess.run(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=h.bound(timeout))
    check(proc.returncode == 0, f"{argv[0]} exit code {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def socat_argv(server):
    target = f"TCP6:[{server.host}]:{server.port}" if ":" in server.host else f"TCP4:{server.host}:{server.port}"
    # -t: after stdin's end, wait up to 60 s for the server's end (the default 0.5 s could cut the echo short).
    return ["socat", "-t", "60", "-T", "60", "-b", "65536", "-", target]


def socat_small_message():
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2")
    path = h.scratch("hello.txt")
    with open(path, "wb") as f:
        f.write(b"hello, fiberio\n")
    out = client(socat_argv(server), path)
    check(out == b"hello, fiberio\n", f"socat got {out!r}")
    rc, _ = server.stop()
    check(rc == 0, f"exit code {rc}")


def socat_large_payload_half_close():
    # socat sends 32 MiB, shuts down its write side at the end of stdin, and reads until the server closes:
    # the whole payload must come back, then the end of stream.
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2")
    path = payload_file("big.bin", 32 << 20)
    with open(path, "rb") as f:
        expected = h.sha256(f.read())
    out = client(socat_argv(server), path, timeout=120)
    check(len(out) == 32 << 20, f"got {len(out)} bytes back, sent {32 << 20}")
    check(h.sha256(out) == expected, "the echo differs from the payload")
    rc, _ = server.stop()
    check(rc == 0, f"exit code {rc}")


def nc_half_close():
    # nc -N: shutdown(SHUT_WR) after the end of stdin, then read until the server closes.
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0")
    path = payload_file("medium.bin", 4 << 20)
    with open(path, "rb") as f:
        data = f.read()
    out = client(["nc", "-N", "-w", "60", "127.0.0.1", str(server.port)], path)
    check(out == data, f"nc got {len(out)} bytes, sent {len(data)}; equal prefix: {out == data[:len(out)]}")
    rc, _ = server.stop()
    check(rc == 0, f"exit code {rc}")


def socat_clients_at_once():
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2")
    paths = [payload_file(f"client-{i}.bin", (i + 1) * 300_000) for i in range(8)]
    results = [None] * len(paths)
    errors = []

    def one(i):
        try:
            results[i] = client(socat_argv(server), paths[i])
        except Exception as e:  # collected and reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(paths))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(h.bound(120))
    check(not errors, f"clients failed: {errors}")
    for i, path in enumerate(paths):
        with open(path, "rb") as f:
            check(results[i] == f.read(), f"client {i}: echo differs")
    rc, _ = server.stop()
    check(rc == 0, f"exit code {rc}")


def socat_over_ipv6():
    try:
        import socket
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return "::1 not available: skipped"
    server = h.start(h.ECHO, "--listen", "[::1]:0")
    check(server.ready_line.startswith("listening on [::1]:"), server.ready_line)
    path = payload_file("medium.bin", 4 << 20)
    with open(path, "rb") as f:
        data = f.read()
    check(client(socat_argv(server), path) == data, "echo over IPv6 differs")
    rc, _ = server.stop()
    check(rc == 0, f"exit code {rc}")


if __name__ == "__main__":
    h.run([
        socat_small_message,
        socat_large_payload_half_close,
        nc_half_close,
        socat_clients_at_once,
        socat_over_ipv6,
    ], needs=["socat", "nc"])
