#!/usr/bin/env python3
"""Cold start of a Lambda executable, measured the way Lambda sees it: from process start to its
first `GET /2018-06-01/runtime/invocation/next` against a local Runtime API on 127.0.0.1.

    scripts/cold-start.py BINARY [--handler NAME ...] [--runs 30]

Prints, per handler, the median, min and max in milliseconds over the runs. Nothing leaves
this machine: the Runtime API is a local server, the AWS settings are dummies and no function
sends anything before its first invocation (configuration and SDK clients are built at init;
credentials are resolved lazily, on the first call).
"""
import argparse
import http.server
import os
import statistics
import subprocess
import sys
import threading
import time

NEXT = "/2018-06-01/runtime/invocation/next"


class RuntimeApi(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.first_next = threading.Event()
        self.at = None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == NEXT and not self.server.first_next.is_set():
            self.server.at = time.perf_counter()
            self.server.first_next.set()
        # Never hand out an event: the process is killed once its first /next is seen.
        time.sleep(2)
        self.send_response(500)
        self.end_headers()

    def do_POST(self):  # init errors
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def one_run(binary, handler):
    api = RuntimeApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": f"cold-start-{handler}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/cold-start",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_REGION": "us-east-2",
        "AWS_ACCESS_KEY_ID": "AKIDLOCALONLY",
        "AWS_SECRET_ACCESS_KEY": "local-only",
        "AWS_EC2_METADATA_DISABLED": "true",
        "_HANDLER": handler,
        "RUST_LOG": "info",
    }
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = api.first_next.wait(10)
    proc.kill()
    proc.wait()
    api.shutdown()
    api.server_close()
    if not ok:
        raise SystemExit(f"{binary} ({handler}) never asked for an invocation within 10 s")
    return (api.at - start) * 1000.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("--handler", action="append", default=None)
    ap.add_argument("--runs", type=int, default=30)
    a = ap.parse_args()
    handlers = a.handler or ["bootstrap"]
    size = os.path.getsize(a.binary)
    print(f"{a.binary}: {size} bytes, {a.runs} runs per handler")
    for h in handlers:
        one_run(a.binary, h)  # page cache warm, as a reused Lambda host's would be
        ms = [one_run(a.binary, h) for _ in range(a.runs)]
        print(
            f"  {h:<18} median {statistics.median(ms):6.2f} ms   "
            f"min {min(ms):6.2f}   max {max(ms):6.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
