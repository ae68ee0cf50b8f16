#!/usr/bin/env python3
"""SIGINT/SIGTERM: both programs stop accepting, let in-flight connections finish for a short grace period,
close the rest, and exit 0 within 2 s (checked here with a generous "did not hang" bound).
usage: test_signals.py FIBERIO_ECHO FIBERIO_PROXY"""

import os
import re
import signal
import socket
import subprocess
import threading
import time

import harness as h
from harness import check

HANG = 5.0  # "did not hang" bound in seconds (the contract says 2 s; the measured time is printed)


def stop_and_time(server, sig):
    rc, took = server.stop(sig, limit=HANG + 5)
    check(rc == 0, f"exit code {rc} after {signal.Signals(sig).name}; stderr: {server.stderr_text()}")
    check(took < h.bound(HANG), f"took {took:.2f} s to exit after {signal.Signals(sig).name}")
    return took


def wait_logged(server, text, limit=5.0):
    """True once `text` appears in the server's stderr, within `limit` seconds."""
    end = time.monotonic() + h.bound(limit)
    while time.monotonic() < end:
        if text in server.stderr_text():
            return True
        time.sleep(0.05)
    return False


def closed_by_server(sock):
    sock.settimeout(h.bound(HANG))
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def no_connections():
    notes = []
    for program in (h.ECHO, h.PROXY):
        for sig in (signal.SIGTERM, signal.SIGINT):
            args = ["--listen", "127.0.0.1:0"] + (["--upstream", "127.0.0.1:1"] if program == h.PROXY else [])
            server = h.start(program, *args)
            notes.append(f"{stop_and_time(server, sig):.2f}")
    return "exit after " + ", ".join(notes) + " s"


def echo_with_idle_connections():
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2")
    idle = [h.connect(server.address) for _ in range(50)]
    for s in idle[:10]:
        s.sendall(b"x")
        check(s.recv(1) == b"x", "no echo")
    took = stop_and_time(server, signal.SIGTERM)
    check(all(closed_by_server(s) for s in idle), "an idle client was not closed")
    for s in idle:
        s.close()
    try:
        socket.create_connection(server.address, timeout=2).close()
        raise h.Failure("still accepting after exit")
    except (ConnectionRefusedError, socket.timeout):
        pass
    return f"exit after {took:.2f} s with 50 idle connections"


def in_flight_connection_finishes():
    # A client in the middle of an exchange when the signal comes: it finishes within the grace period.
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2")
    s = h.connect(server.address)
    s.sendall(b"first ")
    check(s.recv(6) == b"first ", "no echo")
    result = {}

    def stop():
        result["rc"], result["took"] = server.stop(signal.SIGTERM, limit=HANG + 5)

    t = threading.Thread(target=stop)
    t.start()
    time.sleep(0.05)
    chunks = [b"chunk%d " % i for i in range(5)]
    for c in chunks:  # 5 x 40 ms, well inside the grace period
        s.sendall(c)
        time.sleep(0.04)
    s.shutdown(socket.SHUT_WR)
    reply = h.recv_all(s)
    s.close()
    t.join(h.bound(HANG + 10))
    check(reply == b"".join(chunks), f"in-flight echo cut short: {reply!r}")
    check(result.get("rc") == 0, f"exit code {result.get('rc')}")
    return f"exit after {result['took']:.2f} s"


def proxy_with_active_relays():
    echo = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "1")
    proxy = h.start(h.PROXY, "--listen", "127.0.0.1:0", "--upstream", echo.hostport, "--threads", "2")
    clients = [h.connect(proxy.address) for _ in range(20)]
    for i, s in enumerate(clients):
        s.sendall(b"%02d" % i)
        check(s.recv(2) == b"%02d" % i, "no echo through the proxy")
    stop = {}

    def busy():  # keeps one relay moving while the signal arrives
        s = h.connect(proxy.address)
        try:
            while "done" not in stop:
                s.sendall(b"z" * 4096)
                s.recv(65536)
        except OSError:
            pass
        finally:
            s.close()

    t = threading.Thread(target=busy)
    t.start()
    time.sleep(0.1)
    took = stop_and_time(proxy, signal.SIGINT)
    stop["done"] = True
    t.join(h.bound(10))
    check(all(closed_by_server(s) for s in clients), "a proxied client was not closed")
    for s in clients:
        s.close()
    stop_and_time(echo, signal.SIGTERM)
    return f"proxy exit after {took:.2f} s with 21 open relays"


def usr1_logs_stats_and_hup_checks_the_config():
    """SIGUSR1 and SIGHUP do not stop a server (they killed it, exit 138 and 129): USR1 logs the open
    connections and each worker's counters, HUP checks the configuration again and says whether it is
    valid; the server keeps serving, and SIGTERM still stops it."""
    cfg = h.scratch("hup.toml")
    with open(cfg, "w") as f:
        f.write("[runtime]\nthreads = 2\n")
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--config", cfg)
    with h.connect(server.address) as s:
        s.sendall(b"x")
        check(s.recv(1) == b"x", "no echo")

        server.proc.send_signal(signal.SIGUSR1)
        check(wait_logged(server, "stats: 1 connection(s) open; worker 0: "), f"no stats line: {server.stderr_text()}")
        # Lines logged while serving carry the time (UTC), the pid and a level.
        stats = [l for l in server.stderr_text().splitlines() if "stats:" in l][0]
        pattern = r"^fiberio-echo: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[pid %d\] info: stats: " % server.proc.pid
        check(re.match(pattern, stats), f"stats line without time, pid and level: {stats!r}")
        server.proc.send_signal(signal.SIGHUP)
        check(wait_logged(server, "SIGHUP: the configuration is valid"), f"no SIGHUP line: {server.stderr_text()}")
        with open(cfg, "w") as f:
            f.write("[runtime]\nthreads = 0\n")
        server.proc.send_signal(signal.SIGHUP)
        check(wait_logged(server, "SIGHUP: the configuration has errors"), f"no SIGHUP error: {server.stderr_text()}")
        check(f"{cfg}:2" in server.stderr_text(), f"the error does not name the line: {server.stderr_text()}")
        check(server.alive(), "the server died on SIGUSR1/SIGHUP")
        s.sendall(b"y")
        check(s.recv(1) == b"y", "no echo after the signals")
    stop_and_time(server, signal.SIGTERM)
    return "USR1 logged the counters, HUP checked the file twice (valid, then not), still serving"


def hup_reloads_the_proxy_upstreams():
    """SIGHUP reloads the proxy: new connections go to the new upstreams, an established one keeps its
    own, and an invalid file keeps the running configuration. SIGUSR1 shows the upstreams' state."""
    def echo_server():
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        accepted = []

        def run():
            while True:
                try:
                    conn, _ = srv.accept()
                except OSError:
                    return
                accepted.append(conn)

                def serve(c=conn):
                    try:
                        while True:
                            data = c.recv(4096)
                            if not data:
                                return
                            c.sendall(data)
                    except OSError:
                        pass
                threading.Thread(target=serve, daemon=True).start()
        threading.Thread(target=run, daemon=True).start()
        return srv, accepted

    srv_a, accepted_a = echo_server()
    srv_b, accepted_b = echo_server()
    a = "127.0.0.1:%d" % srv_a.getsockname()[1]
    b = "127.0.0.1:%d" % srv_b.getsockname()[1]
    cfg = h.scratch("reload.toml")

    def write_config(text):
        with open(cfg + ".new", "w") as f:
            f.write(text)
        os.replace(cfg + ".new", cfg)

    write_config(f'[proxy]\nlisten = "127.0.0.1:0"\nupstreams = ["{a}"]\n')
    proxy = h.start(h.PROXY, "--config", cfg)

    def round_trip(sock, data):
        sock.sendall(data)
        sock.settimeout(h.bound(5))
        return sock.recv(len(data)) == data

    held = h.connect(proxy.address)
    check(round_trip(held, b"first"), "no echo through upstream A")
    check(len(accepted_a) == 1, f"A accepted {len(accepted_a)}")
    write_config(f'[proxy]\nlisten = "127.0.0.1:0"\nupstreams = ["{b}"]\nbalance = "least-connections"\n')
    proxy.proc.send_signal(signal.SIGHUP)
    check(wait_logged(proxy, "SIGHUP: reloaded for new connections: upstreams (least-connections): " + b),
          f"no reload line: {proxy.stderr_text()}")
    with h.connect(proxy.address) as s:
        check(round_trip(s, b"second"), "no echo through upstream B")
    check(len(accepted_b) == 1 and len(accepted_a) == 1, f"accepted A {len(accepted_a)}, B {len(accepted_b)}")
    check(round_trip(held, b"still"), "the established connection was dropped by the reload")
    write_config("[proxy]\nupstreams = []\n")
    proxy.proc.send_signal(signal.SIGHUP)
    check(wait_logged(proxy, "SIGHUP: the configuration has errors"), f"no error line: {proxy.stderr_text()}")
    with h.connect(proxy.address) as s:
        check(round_trip(s, b"third"), "the running configuration was not kept")
    check(len(accepted_b) == 2, f"B accepted {len(accepted_b)}")
    proxy.proc.send_signal(signal.SIGUSR1)
    check(wait_logged(proxy, f"upstreams (least-connections): {b} up, 0 open"), f"no upstream state: {proxy.stderr_text()}")
    held.close()
    stop_and_time(proxy, signal.SIGTERM)
    srv_a.close()
    srv_b.close()
    return "reloaded to a new upstream without dropping the established relay; a broken file was refused"


def quit_dumps_every_fiber_and_serving_goes_on():
    """SIGQUIT logs every fiber (name, state, what it waits on, for how long, its stack) and the server
    keeps serving; with --on-sigquit abort it is SIGQUIT's default action again."""
    for mode in ("idle-loop", "fiber"):
        server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2", "--connection-mode", mode)
        socks = [h.connect(server.address) for _ in range(3)]
        for s in socks:
            s.sendall(b"x")
            check(s.recv(1) == b"x", f"{mode}: no echo")
        time.sleep(0.3)  # every connection back at its wait (one may still be on its way there)
        server.proc.send_signal(signal.SIGQUIT)
        check(wait_logged(server, "SIGQUIT: "), f"{mode}: no SIGQUIT line: {server.stderr_text()}")
        time.sleep(0.2)
        lines = [l for l in server.stderr_text().splitlines() if "info: fiber '" in l]
        connections = [l for l in lines if "fiber 'connection'" in l]
        check(len(connections) == 3, f"{mode}: {len(connections)} connection fibers in {lines}")
        check(all(re.search(r"waiting \d+ ms on fd \d+ read", l) for l in connections), f"{mode}: {connections}")
        if mode == "idle-loop":
            check(all("idle loop" in l for l in connections), f"{mode}: {connections}")
        else:
            check(all(re.search(r"stack \d+ KiB of \d+ KiB", l) for l in connections), f"{mode}: {connections}")
        check(any("fiber 'acceptor'" in l and "on fd" in l for l in lines), f"{mode}: no acceptor in {lines}")
        check(server.alive(), f"{mode}: SIGQUIT stopped the server")
        for s in socks:
            s.sendall(b"y")
            check(s.recv(1) == b"y", f"{mode}: no echo after SIGQUIT")
            s.close()
        stop_and_time(server, signal.SIGTERM)
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--on-sigquit", "abort")
    server.proc.send_signal(signal.SIGQUIT)
    try:
        rc = server.proc.wait(timeout=h.bound(10))
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == -signal.SIGQUIT, f"--on-sigquit abort: exit {rc}, not killed by SIGQUIT")
    return "SIGQUIT listed every fiber in both modes, still serving; --on-sigquit abort aborted"


if __name__ == "__main__":
    h.run([
        no_connections,
        echo_with_idle_connections,
        in_flight_connection_finishes,
        proxy_with_active_relays,
        usr1_logs_stats_and_hup_checks_the_config,
        hup_reloads_the_proxy_upstreams,
        quit_dumps_every_fiber_and_serving_goes_on,
    ])
