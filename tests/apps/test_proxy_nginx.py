#!/usr/bin/env python3
"""curl through fiberio-proxy to a local nginx serving a file: the bytes arrive intact (sha256), with several
downloads at once and with nginx listed twice as upstream (round-robin). nginx is started here, in the
foreground, on 127.0.0.1 and a free port, and stopped by its pid.
usage: test_proxy_nginx.py FIBERIO_ECHO FIBERIO_PROXY"""

import os
import subprocess
import threading

import harness as h
from harness import check


def serve_files():
    root = h.tmpdir()
    files = {}
    for name, size in (("small.txt", 1000), ("big.bin", 24 << 20)):
        data = os.urandom(size)
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
        files[name] = h.sha256(data)
    return root, files


def curl(url, out_path):
    proc = subprocess.run(["curl", "--silent", "--show-error", "--fail", "--max-time", str(int(h.bound(60))),
                           "--noproxy", "*", "-o", out_path, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=h.bound(90))
    check(proc.returncode == 0, f"curl {url}: exit code {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    with open(out_path, "rb") as f:
        return h.sha256(f.read())


def curl_through_proxy_to_nginx():
    root, files = serve_files()
    nginx, nginx_port = h.start_nginx(root)
    upstream = f"127.0.0.1:{nginx_port}"
    proxy = h.start(h.PROXY, "--listen", "127.0.0.1:0", "--upstream", f"{upstream},{upstream}", "--threads", "2")
    base = f"http://127.0.0.1:{proxy.port}"
    for name, digest in files.items():
        check(curl(f"{base}/{name}", h.scratch(f"one-{name}")) == digest, f"{name}: sha256 differs")
    # several downloads at once
    results, errors = {}, []

    def fetch(i):
        try:
            results[i] = curl(f"{base}/big.bin", h.scratch(f"par-{i}.bin"))
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(h.bound(120))
    check(not errors, f"parallel downloads failed: {errors}")
    check(all(results.get(i) == files["big.bin"] for i in range(4)), "a parallel download differs")
    rc, _ = proxy.stop()
    check(rc == 0, f"proxy exit code {rc}; stderr: {proxy.stderr_text()}")
    h.stop_process(nginx)


if __name__ == "__main__":
    h.run([curl_through_proxy_to_nginx], needs=["nginx", "curl"])
