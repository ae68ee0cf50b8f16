#!/usr/bin/env python3
"""redis-benchmark and redis-cli through fiberio-proxy to a local redis-server: the benchmark completes
without errors, and values written through the proxy read back intact. redis-server is started here, in
the foreground, on 127.0.0.1 and a free port, without persistence, and stopped by its pid.
usage: test_proxy_redis.py FIBERIO_ECHO FIBERIO_PROXY"""

import os
import subprocess

import harness as h
from harness import check


def run(argv, stdin=None, timeout=120):
    proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=h.bound(timeout))
    check(proc.returncode == 0, f"{' '.join(argv)}: exit code {proc.returncode}: "
                                f"{proc.stderr.decode(errors='replace')[-500:]}")
    return proc.stdout.decode(errors="replace")


def redis_through_proxy():
    redis, redis_port = h.start_redis()
    proxy = h.start(h.PROXY, "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{redis_port}", "--threads", "2")
    port = str(proxy.port)
    cli = ["redis-cli", "-h", "127.0.0.1", "-p", port]
    check(run(cli + ["PING"]).strip() == "PONG", "PING through the proxy")
    value = os.urandom(512 * 1024).hex()  # 1 MiB of text
    check(run(cli + ["-x", "SET", "fiberio:big"], stdin=value.encode()).strip() == "OK", "SET")
    check(run(cli + ["--no-raw", "STRLEN", "fiberio:big"]).strip() == f"(integer) {len(value)}", "STRLEN")
    got = run(cli + ["--raw", "GET", "fiberio:big"])
    check(got.rstrip("\n") == value, "value read back through the proxy differs")
    # -q: one summary line per test; errors make redis-benchmark exit non-zero or print "ERR".
    out = run(["redis-benchmark", "-h", "127.0.0.1", "-p", port, "-n", str(20000), "-c", "20", "-t",
               "ping,set,get,lpush,lpop", "-q"], timeout=300)
    summary = [line for line in out.replace("\r", "\n").splitlines() if "requests per second" in line]
    check(len(summary) >= 5, f"redis-benchmark summary incomplete: {out[-800:]!r}")
    check("ERR" not in out and "rror" not in out, f"redis-benchmark reported errors: {out[-800:]!r}")
    # pipelined requests
    out = run(["redis-benchmark", "-h", "127.0.0.1", "-p", port, "-n", "20000", "-c", "10", "-P", "16", "-t",
               "set,get", "-q"], timeout=300)
    check("rror" not in out, f"pipelined benchmark: {out[-800:]!r}")
    rc, _ = proxy.stop()
    check(rc == 0, f"proxy exit code {rc}; stderr: {proxy.stderr_text()}")
    h.stop_process(redis)
    return "; ".join(line.strip() for line in summary[:3])


if __name__ == "__main__":
    h.run([redis_through_proxy], needs=["redis-server", "redis-benchmark", "redis-cli"])
