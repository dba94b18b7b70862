#!/usr/bin/env python3
"""Handler dispatch and cold start of the shipped Lambda executables, measured the way the
function's caller sees them, with nothing leaving this machine.

    scripts/cold-start.py DIR [--function NAME ...] [--runs 30] [--bound-ms 15] [--json FILE]

DIR holds one `<function>/bootstrap` per function (what `cargo lambda build` writes under
target/lambda/). For each function, each run starts the executable against a local Lambda
Runtime API and local AWS endpoints (`AWS_ENDPOINT_URL`: one stub on 127.0.0.1 that answers the
AWS JSON, query/XML and RPC-v2-CBOR protocols with canned answers, and the listener's health
and order paths), hands it its canned event (`events/*.json`) and records:

- cold: process start -> the runtime's response to that first invocation;
- warm: the same event again in the same process, /next handed out -> response (median of
  three invocations);
- cold start = cold - warm: what the first invocation costs beyond the work itself (process
  start, init, SDK set-up, the first connections and credentials). Work deferred from init to
  the first invocation is counted, by design.

Every response is checked to be the named handler's (its report's keys), so the same run is the
dispatch smoke test. Prints per function the package's bytes, the cold start median/min/max, the
warm median; exits 1 when a response is not its handler's, or a median is over --bound-ms (when
given). The figure is for the x86_64 build of the shipping profile (Lambda runs arm64, which
nothing here can execute): docs/build.md.
"""
import argparse
import http.server
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEXT = "/2018-06-01/runtime/invocation/next"
ACCOUNT = "111122223333"
STACK = "orderbroker"
LB = f"arn:aws:elasticloadbalancing:us-east-2:{ACCOUNT}:loadbalancer/app/orderbroker/50dc6c495c0c9188"
TG = f"arn:aws:elasticloadbalancing:us-east-2:{ACCOUNT}:targetgroup/orderbroker-green/6d0ecf831eec9f09"
LISTENER = f"arn:aws:elasticloadbalancing:us-east-2:{ACCOUNT}:listener/app/orderbroker/50dc6c495c0c9188/f2f7dc8efc522ab2"
CLUSTER = "orderbroker-Cluster-9sJrSuvDvEvY"
SERVICE = "orderbroker-Service-Xk2PqA9bT3Zr"


# ------------------------------------------------------------------ canned AWS answers
# By operation name. Each function's scenario takes its normal path on these (a healthy
# target, one running task, no deployment in progress, an empty inventory); anything not
# listed answers an empty success.
def now():
    return time.time()


ANSWERS = {
    # Application Auto Scaling (AWS JSON 1.1)
    "DescribeScalableTargets": lambda: {"ScalableTargets": [{
        "ServiceNamespace": "ecs", "ResourceId": f"service/{CLUSTER}/{SERVICE}",
        "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 3, "MaxCapacity": 40,
        "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
        "CreationTime": now()}]},
    "DescribeScheduledActions": lambda: {"ScheduledActions": []},
    "GetPredictiveScalingForecast": lambda: {"LoadForecast": [], "CapacityForecast": {"Timestamps": [], "Values": []}, "UpdateTime": now()},
    # SSM (AWS JSON 1.1): no overrides, no settings, an empty ledger (each parameter's "{}").
    "GetParameter": lambda: {"Parameter": {"Name": "p", "Type": "String", "Value": "{}", "Version": 1}},
    "PutParameter": lambda: {"Version": 1, "Tier": "Standard"},
    # ECS (AWS JSON 1.1)
    "DescribeServices": lambda: {"services": [{
        "serviceArn": f"arn:aws:ecs:us-east-2:{ACCOUNT}:service/{CLUSTER}/{SERVICE}",
        "serviceName": SERVICE, "status": "ACTIVE", "desiredCount": 3, "runningCount": 3,
        "pendingCount": 0, "deploymentController": {"type": "CODE_DEPLOY"}, "taskSets": []}],
        "failures": []},
    "ListTasks": lambda: {"taskArns": []},
    "DescribeTasks": lambda: {"tasks": [], "failures": []},
    # CodeDeploy (AWS JSON 1.1)
    "PutLifecycleEventHookExecutionStatus": lambda: {"lifecycleEventHookExecutionId": "hook"},
    "ListDeployments": lambda: {"deployments": []},
    "GetDeployment": lambda: ("error", "DeploymentDoesNotExistException", "no such deployment"),
    # Resource Groups Tagging (AWS JSON 1.1)
    "GetResources": lambda: {"ResourceTagMappingList": [], "PaginationToken": ""},
    "TagResources": lambda: {"FailedResourcesMap": {}},
    # ELBv2 (query / XML)
    "DescribeTargetHealth": lambda: {"TargetHealthDescriptions": [{
        "Target": {"Id": "10.0.1.17", "Port": 8080},
        "HealthCheckPort": "8080", "TargetHealth": {"State": "healthy"}}]},
    "DescribeListeners": lambda: {"Listeners": [{
        "ListenerArn": LISTENER, "LoadBalancerArn": LB, "Port": 9090, "Protocol": "HTTP",
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": TG}]}]},
    "DescribeRules": lambda: {"Rules": [{
        "RuleArn": LISTENER.replace(":listener/", ":listener-rule/") + "/1", "Priority": "default",
        "IsDefault": True, "Conditions": [],
        "Actions": [{"Type": "forward", "TargetGroupArn": TG, "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": TG, "Weight": 1}]}}]}]},
    "DescribeCapacityReservation": lambda: {"CapacityReservationState": [], "DecreaseRequestsRemaining": 3},
    # CloudFormation (query / XML): the stack's own resources, none taggable by this stub.
    "ListStackResources": lambda: {"StackResourceSummaries": []},
    # CloudWatch (RPC v2 CBOR)
    "GetMetricData": lambda: {"MetricDataResults": [], "Messages": []},
    "PutMetricData": lambda: {},
}

# Each function: its environment (as the template sets it), its canned event, and the keys its
# answer must carry (the dispatch check).
def scenarios(aws_url):
    common = {"STACK_NAME": STACK}
    hook = dict(common, HEALTH_PATH="/health", ORDER_PATH="/orders", SYNTHETIC_ORDERS="20",
                P99_THRESHOLD_MS="500", READINESS_SECONDS="60", NEVER_HEALTHY_SECONDS="85",
                WARMUP_ORDERS="10", WARMUP_ORDERS_PER_TARGET="50", REPORT_RESERVE_SECONDS="15",
                LISTENER="test",
                TEST_LISTENER_URL=aws_url, PRODUCTION_LISTENER_URL=aws_url, LISTENER_ARN=LISTENER)
    return {
        "market-warmup": (dict(common,
            SCALABLE_RESOURCE_ID=f"service/{CLUSTER}/{SERVICE}",
            PREDICTIVE_POLICY_NAME=f"{STACK}-predictive-cpu",
            OVERRIDES_PARAMETER=f"/{STACK}/warmup/overrides", BASELINE_MIN_TASKS="3",
            MARKET_CLOSURES="", SAFETY_FACTOR="1.3", FALLBACK_FLOOR="12", LEAD_MINUTES="15",
            TASK_START_SECONDS="150", METRICS_NAMESPACE="OrderBroker/WarmUp",
            ALB_RESERVATION_ENABLED="false", LOAD_BALANCER_ARN=LB,
            ALB_RESERVATION_LEAD_MINUTES="60", ALB_RESERVATION_FLOOR_UNITS="0",
            ALB_RESERVATION_RECORD_PARAMETER=f"/{STACK}/alb-reservation"),
            "market-warmup-dry-run.json", ["floor_now", "dry_run"]),
        "traffic-validator": (hook, "codedeploy-lifecycle-hook.json", ["succeeded", "reason"]),
        "warm-pool": (dict(common, CLUSTER_NAME=CLUSTER, SERVICE_NAME=SERVICE,
            SETTINGS_PARAMETER=f"/{STACK}/warm-pool/settings", STANDBY_DEFAULT="2",
            CPU_TARGET="45", HEALTHY_THRESHOLD="2", HEALTH_INTERVAL_SECONDS="5",
            RUNNING_TO_HEALTHY_SECONDS="60", DEFAULT_START_SECONDS="90",
            METRICS_NAMESPACE="OrderBroker/WarmPool"),
            "warm-pool-schedule.json", ["published", "decision"]),
        "tag-enforcer": (dict(common,
            STACK_ID=f"arn:aws:cloudformation:us-east-2:{ACCOUNT}:stack/{STACK}/6a3c1e10-cf33-11ee-8a1b-0a1b2c3d4e5f",
            COST_CENTER="CC-1234", CLUSTER_NAME=CLUSTER, METRICS_NAMESPACE="OrderBroker/Tagging"),
            "tag-enforcer-hourly.json", ["compliant", "fixed"]),
        "load-generator": ({"PRODUCTION_LISTENER_URL": aws_url, "TEST_LISTENER_URL": aws_url,
            "ORDER_PATH": "/orders", "MAX_RATE": "50", "MAX_ORDERS_PER_INVOCATION": "1000",
            "MAX_ORDERS_PER_DAY": "100000", "LEDGER_PARAMETER": f"/{STACK}/load-ledger"},
            "load-generator-segment.json", ["run_id", "sent", "succeeded"]),
        "deploy-watchdog": (dict(CLUSTER=CLUSTER, SERVICE_NAME=SERVICE,
            APPLICATION_NAME=f"{STACK}-app", DEPLOYMENT_GROUP=f"{STACK}-dg",
            NEVER_HEALTHY_SECONDS="85", READINESS_SECONDS="145", COUNTED_STOPS="2",
            HOOK_TIMEOUT_SECONDS="220"),
            "ecs-task-stopped-elb-health.json", ["handled", "detail"]),
    }


# ------------------------------------------------------------------ encodings
def cbor(v):
    def head(major, n):
        if n < 24:
            return bytes([major << 5 | n])
        for size, code in ((1, 24), (2, 25), (4, 26), (8, 27)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | code]) + n.to_bytes(size, "big")
        raise ValueError(n)
    if v is None:
        return b"\xf6"
    if v is True or v is False:
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, float):
        return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return head(3, len(b)) + b
    if isinstance(v, list):
        return head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        return head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    raise TypeError(type(v))


def xml(v, name):
    if isinstance(v, dict):
        return f"<{name}>" + "".join(xml(x, k) for k, x in v.items()) + f"</{name}>"
    if isinstance(v, list):
        return f"<{name}>" + "".join(xml(x, "member") for x in v) + f"</{name}>"
    if isinstance(v, bool):
        v = "true" if v else "false"
    return f"<{name}>{v}</{name}>"


class Stub(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Quick(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, each answer in one write with TCP_NODELAY: a header write and a
    body write in separate segments meet the client's delayed ACK (40 ms on Linux) on a reused
    connection, which would be measured as the function's time."""
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers):
        head = [f"HTTP/1.1 {status} {'OK' if status < 300 else 'Error'}",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        self.wfile.flush()


class StubHandler(Quick):
    def reply(self, status, body, ctype, extra=()):
        self.answer(status, body, [("Content-Type", ctype), ("x-amzn-RequestId", "stub"), *extra])

    def do_GET(self):  # the listener's health path
        self.reply(200, b"ok", "text/plain")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target")
        if self.path.startswith("/orders"):
            order = json.dumps({"orderId": "o-1", "status": "ACCEPTED"}).encode()
            return self.reply(200, order, "application/json")
        if target:  # AWS JSON 1.0/1.1
            answer = ANSWERS.get(target.rsplit(".", 1)[-1], lambda: {})()
            ctype = self.headers.get("Content-Type", "application/x-amz-json-1.1")
            if isinstance(answer, tuple):
                err = json.dumps({"__type": answer[1], "message": answer[2]}).encode()
                return self.reply(400, err, ctype)
            return self.reply(200, json.dumps(answer).encode(), ctype)
        if "/operation/" in self.path:  # RPC v2 CBOR
            answer = ANSWERS.get(self.path.rsplit("/", 1)[-1], lambda: {})()
            return self.reply(200, cbor(answer), "application/cbor",
                              [("smithy-protocol", "rpc-v2-cbor")])
        action = urllib.parse.parse_qs(body.decode()).get("Action", [""])[0]  # query / XML
        answer = ANSWERS.get(action, lambda: {})()
        doc = (f"<{action}Response>{xml(answer, action + 'Result')}"
               f"<ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata></{action}Response>")
        return self.reply(200, doc.encode(), "text/xml")


# ------------------------------------------------------------------ the Runtime API
class RuntimeApi(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, event, invocations):
        super().__init__(("127.0.0.1", 0), RuntimeHandler)
        self.event = event
        self.left = invocations
        self.handed = {}      # request id -> time handed out
        self.answers = []     # (request id, handed, answered, kind, body)
        self.done = threading.Event()
        self.lock = threading.Lock()


class RuntimeHandler(Quick):
    def do_GET(self):
        s = self.server
        with s.lock:
            n = s.left
            s.left -= 1
        if n <= 0:  # every invocation answered: hold the poll until the process is killed
            s.done.set()
            time.sleep(5)
            return
        rid = f"req-{n}"
        body = s.event
        s.handed[rid] = time.perf_counter()
        self.answer(200, body, [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Aws-Request-Id", rid),
            ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000)),
            ("Lambda-Runtime-Invoked-Function-Arn",
             f"arn:aws:lambda:us-east-2:{ACCOUNT}:function:cold-start"),
            ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
        ])

    def do_POST(self):
        at = time.perf_counter()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = self.path.split("/")
        s = self.server
        if "invocation" in parts:
            rid, kind = parts[-2], parts[-1]
            s.answers.append((rid, s.handed.get(rid), at, kind, body))
        else:  # init error
            s.answers.append((None, None, at, "init-error", body))
            s.done.set()
        self.answer(202, b"", [])


def one_run(binary, name, env_extra, event, warm_runs=3):
    api = RuntimeApi(event, 1 + warm_runs)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": f"cold-start-{name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/cold-start",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_REGION": "us-east-2",
        "AWS_DEFAULT_REGION": "us-east-2",
        "AWS_ACCESS_KEY_ID": "AKIDLOCALONLY",
        "AWS_SECRET_ACCESS_KEY": "local-only",
        "AWS_SESSION_TOKEN": "local-only",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "_HANDLER": name,
        "RUST_LOG": "info",
    }
    env.update(env_extra)
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader.start()
    finished = api.done.wait(30)
    proc.kill()
    proc.wait()
    reader.join(2)
    api.shutdown()
    api.server_close()
    logs = b"".join(out).decode(errors="replace")
    if not finished or not api.answers or api.answers[0][3] != "response":
        what = api.answers[0][3] if api.answers else "nothing within 30 s"
        body = api.answers[0][4].decode(errors="replace") if api.answers else ""
        raise RuntimeError(f"{name}: first invocation answered {what} {body}\n{logs[-600:]}")
    first = api.answers[0]
    warm = [a[2] - a[1] for a in api.answers[1:] if a[3] == "response" and a[1] is not None]
    if len(warm) != warm_runs:
        raise RuntimeError(f"{name}: {len(warm)} of {warm_runs} warm invocations answered\n{logs[-600:]}")
    cold = first[2] - start
    return cold * 1000.0, statistics.median(warm) * 1000.0, json.loads(first[4] or b"null")


def dispatch_check(name, answer, keys):
    missing = [k for k in keys if not isinstance(answer, dict) or k not in answer]
    if missing:
        raise RuntimeError(f"{name}: the answer is not the {name} handler's (missing {missing}): "
                           f"{json.dumps(answer)[:400]}")


def measure(bin_dir, name, scenario, runs):
    env, event_file, keys = scenario
    binary = os.path.join(bin_dir, name, "bootstrap")
    with open(os.path.join(ROOT, "events", event_file), "rb") as f:
        event = f.read()
    cold, warm, answer = one_run(binary, name, env, event)  # page cache warm, as a reused host's
    dispatch_check(name, answer, keys)
    starts, warms = [], []
    for _ in range(runs):
        cold, warm, answer = one_run(binary, name, env, event)
        dispatch_check(name, answer, keys)
        starts.append(cold - warm)
        warms.append(warm)
    return {
        "function": name,
        "bytes": os.path.getsize(binary),
        "runs": runs,
        "cold_start_ms": {"median": statistics.median(starts), "min": min(starts), "max": max(starts)},
        "warm_ms": {"median": statistics.median(warms)},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bin_dir")
    ap.add_argument("--function", action="append", default=None)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--bound-ms", type=float, default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    stub = Stub(("127.0.0.1", 0), StubHandler)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{stub.server_address[1]}"
    os.environ["AWS_ENDPOINT_URL"] = url
    table = scenarios(url)
    built = sorted(d for d in os.listdir(a.bin_dir)
                   if os.path.isfile(os.path.join(a.bin_dir, d, "bootstrap")))
    names = a.function or built
    unknown = [n for n in names if n not in table]
    if unknown:  # a new function needs its canned event and answers here
        ap.error(f"no scenario for {unknown}; known: {', '.join(table)}")
    absent = [n for n in (a.function or table) if n not in built]
    if absent:
        ap.error(f"{a.bin_dir} has no {', '.join(n + '/bootstrap' for n in absent)}")
    print(f"{a.bin_dir}: {a.runs} runs per function; cold start = (process start -> first "
          f"answer) - warm answer, ms")
    rows, failed = [], []
    for name in names:
        try:
            r = measure(a.bin_dir, name, table[name], a.runs)
        except RuntimeError as e:
            print(f"  {name:<18} FAILED: {e}")
            failed.append(name)
            continue
        c = r["cold_start_ms"]
        over = a.bound_ms is not None and c["median"] > a.bound_ms
        print(f"  {name:<18} {r['bytes']:>10} B   cold start median {c['median']:6.2f}   "
              f"min {c['min']:6.2f}   max {c['max']:6.2f}   warm {r['warm_ms']['median']:7.2f}"
              + ("   OVER BOUND" if over else ""))
        if over:
            failed.append(name)
        rows.append(r)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)
    if failed:
        print(f"cold-start: {', '.join(failed)} failed" +
              (f" (bound {a.bound_ms} ms)" if a.bound_ms is not None else ""))
        return 1
    print("cold-start: every function answered its canned event with its own handler's report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
