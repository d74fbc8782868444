"""`hybridplace loadgen NAME --rps R --seconds S`: real inference requests to one
InferenceDeployment's serving pods, as an open-loop Poisson stream.

It finds the pods' addresses from the API server (Ready pods of the InferenceDeployment, as a
client-side balancer would), reads the model's inputs from Triton's metadata endpoint, and sends
KServe v2 HTTP inference requests with aiohttp, each to a pod picked at random (as kube-proxy
does). Arrivals are open loop: a slow answer does not delay the next request. It only sends to
addresses in 127.0.0.0/8 (the local cluster's pods), and is bounded in rate, time and requests
in flight. It prints the achieved rate, p50/p95/p99 latency as the client saw it, and the errors.

Exit codes: 0 done (with or without errors), 1 the API server or every request failed, 2 bad
input (flags, no such InferenceDeployment, no Ready pod, a pod outside the loopback range, model
metadata that cannot be read or is malformed).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from ..builders import names
from .errors import UsageError, unreachable

MAX_RPS = 5000.0
MAX_SECONDS = 600.0
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
MODEL_NAME = "model"  # the name hybridplace-worker serve gives the model in Triton


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "loadgen",
        help="send an open-loop Poisson stream of inference requests to an InferenceDeployment",
        description="Send real inference requests to the serving pods of one InferenceDeployment "
        "(local cluster: pod IPs in 127.0.0.0/8 only) at a Poisson rate for a bounded time, and "
        "print the achieved rate, client-side p50/p95/p99 latency and errors. Exit codes: 0 done, "
        "1 API error or every request failed, 2 bad input or no Ready pod.",
    )
    parser.add_argument("name", metavar="NAME", help="the InferenceDeployment's name")
    parser.add_argument("-n", "--namespace", default=None, help="its namespace (default: the context's, else default)")
    parser.add_argument("--rps", type=float, required=True, help=f"offered load, requests/s (0 < R <= {MAX_RPS:g})")
    parser.add_argument("--seconds", type=float, required=True, help=f"how long to send (0 < S <= {MAX_SECONDS:g})")
    parser.add_argument("--batch", type=int, default=1, help="items per request (default 1)")
    parser.add_argument("--max-in-flight", type=int, default=512,
                        help="requests outstanding at most; past it an arrival is counted as dropped (default 512)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds (default 10)")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the arrivals and pod choices")
    parser.add_argument("--refresh-seconds", type=float, default=2.0,
                        help="re-list the Ready pods this often during the run, as a client-side balancer "
                        "re-resolves its endpoints: replicas that become Ready get their share at once; "
                        "0 lists them once (default 2)")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig (default: $KUBECONFIG, then ~/.kube/config)")
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text", help="text (default) or json")
    parser.set_defaults(handler=run)


# ---- pure parts ---------------------------------------------------------------------------------


def check_bounds(rps: float, seconds: float, batch: int = 1, max_in_flight: int = 512) -> None:
    if not 0 < rps <= MAX_RPS:
        raise UsageError(f"--rps {rps:g}: expected 0 < R <= {MAX_RPS:g} requests/s")
    if not 0 < seconds <= MAX_SECONDS:
        raise UsageError(f"--seconds {seconds:g}: expected 0 < S <= {MAX_SECONDS:g}")
    if not 1 <= batch <= 4096:
        raise UsageError(f"--batch {batch}: expected 1..4096")
    if not 1 <= max_in_flight <= 10000:
        raise UsageError(f"--max-in-flight {max_in_flight}: expected 1..10000")


def poisson_arrivals(rps: float, seconds: float, rng: random.Random) -> list[float]:
    """Arrival offsets (s): a Poisson process of rate ``rps`` over ``seconds``, conditioned on
    its count being round(rps x seconds). Given the count, a Poisson process's arrival times are
    independent and uniform over the interval; fixing the count means the offered load is exactly
    what was asked, so the achieved rate measures the generator and the servers, not the luck of
    the draw (an unconditioned count would vary by 1/sqrt(R x S): 3% at 50 requests/s for 20 s)."""
    count = round(rps * seconds)
    return sorted(rng.uniform(0.0, seconds) for _ in range(count))


def serving_targets(pods: list[dict[str, Any]], port_name: str = "http") -> list[tuple[str, int]]:
    """(ip, port) of each Ready pod, in 127.0.0.0/8; UsageError for a pod outside it."""
    targets = []
    for pod in pods:
        status, spec = pod.get("status") or {}, pod.get("spec") or {}
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        ip = status.get("podIP")
        if not (ready and ip):
            continue
        if ipaddress.ip_address(ip) not in LOOPBACK:
            raise UsageError(
                f"pod {pod['metadata']['name']} has IP {ip}, outside 127.0.0.0/8: loadgen only sends "
                "to the local cluster's loopback pods"
            )
        ports = [p for c in spec.get("containers") or [] for p in c.get("ports") or []]
        port = next((p["containerPort"] for p in ports if p.get("name") == port_name), None)
        if port is not None:
            targets.append((ip, int(port)))
    return targets


_TRITON_DTYPES = {"FP32": 0.0, "FP16": 0.0, "BF16": 0.0, "FP64": 0.0, "INT64": 0, "INT32": 0, "INT8": 0,
                  "UINT8": 0, "BOOL": False}


def checked_metadata(metadata: Any, where: str) -> dict[str, Any]:
    """``metadata`` (/v2/models/<m>, read from ``where``) as :func:`infer_body` needs it: an
    object whose "inputs" is a list of objects with a string "name" and "datatype" and a list of
    integers "shape"; UsageError, naming ``where`` and what is missing, otherwise."""

    def malformed(what: str) -> UsageError:
        return UsageError(f"the model metadata from {where} is malformed: {what}")

    if not isinstance(metadata, dict):
        raise malformed(f"expected a JSON object, got a {_json_type(metadata)}")
    inputs = metadata.get("inputs")
    if not isinstance(inputs, list):
        said = metadata.get("error")
        raise malformed('no "inputs" list' + (f" (it says: {' '.join(str(said).split())[:200]})" if said else ""))
    for i, spec in enumerate(inputs):
        if not isinstance(spec, dict):
            raise malformed(f"input {i} is not a JSON object")
        label = spec["name"] if isinstance(spec.get("name"), str) else i
        missing = [key for key in ("name", "datatype", "shape") if key not in spec]
        if missing:
            raise malformed(f"input {label} has no " + ", ".join(f'"{key}"' for key in missing))
        if not isinstance(spec["name"], str):
            raise malformed(f'input {i}: "name" is not a string')
        if not isinstance(spec["datatype"], str):
            raise malformed(f'input {label}: "datatype" is not a string')
        shape = spec["shape"]
        if not isinstance(shape, list) or not all(type(d) is int and d >= -1 for d in shape):
            raise malformed(f'input {label}: "shape" is not a list of integers (got {json.dumps(shape)[:100]})')
    return metadata


def _json_type(value: Any) -> str:
    for kind, name in ((list, "list"), (str, "string"), (bool, "boolean"), (int, "number"), (float, "number")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


def infer_body(metadata: dict[str, Any], batch: int) -> dict[str, Any]:
    """A KServe v2 JSON request of zeros for every input of ``metadata`` (/v2/models/<m>),
    as :func:`checked_metadata` passes it."""
    inputs = []
    for spec in metadata.get("inputs") or []:
        dtype = spec["datatype"]
        if dtype not in _TRITON_DTYPES:
            raise UsageError(f"input {spec['name']}: datatype {dtype} is not supported by loadgen")
        shape = [batch if d == -1 else int(d) for d in spec["shape"]]
        size = 1
        for d in shape:
            size *= d
        inputs.append({"name": spec["name"], "shape": shape, "datatype": dtype,
                       "data": [_TRITON_DTYPES[dtype]] * size})
    if not inputs:
        raise UsageError("the model's metadata lists no inputs")
    return {"inputs": inputs}


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear interpolation (numpy's default) on sorted values; None if empty."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class LoadResult:
    """What one run did. Latencies in ms, rates in requests/s."""

    asked_rps: float
    seconds: float
    sent: int = 0
    ok: int = 0
    errors: int = 0
    dropped: int = 0
    elapsed_s: float = 0.0
    achieved_rps: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    error_kinds: dict[str, int] = field(default_factory=dict)
    by_pod: dict[str, int] = field(default_factory=dict)
    refresh_failures: dict[str, int] = field(default_factory=dict)  # failed re-lists of the pods, by kind


def summarize(asked_rps: float, seconds: float, latencies_ms: list[float], errors: Counter, dropped: int,
              send_window_s: float, by_pod: Counter, refresh_failures: Counter | None = None) -> LoadResult:
    """The run's figures. The achieved rate is requests sent over the sending window. ``errors``
    are failed requests; ``refresh_failures`` (failed re-lists of the pods) are not requests and
    count in none of sent, errors or the rate."""
    lat = sorted(latencies_ms)
    sent = len(lat) + sum(errors.values())
    return LoadResult(
        asked_rps=asked_rps, seconds=seconds, sent=sent, ok=len(lat), errors=sum(errors.values()),
        dropped=dropped, elapsed_s=round(send_window_s, 3),
        achieved_rps=round(sent / send_window_s, 3) if send_window_s > 0 else 0.0,
        p50_ms=percentile(lat, 0.50), p95_ms=percentile(lat, 0.95), p99_ms=percentile(lat, 0.99),
        error_kinds=dict(errors), by_pod=dict(by_pod), refresh_failures=dict(refresh_failures or {}),
    )


# ---- I/O ----------------------------------------------------------------------------------------


async def drive(targets: list[tuple[str, int]], body: dict[str, Any], arrivals: list[float], *, rng: random.Random,
                max_in_flight: int, timeout_s: float, refresh=None, refresh_s: float = 0.0,
                ) -> tuple[list[float], Counter, int, float, Counter, Counter]:
    """Send one request per arrival offset, each to a random target; wait for all answers.

    Returns (latencies in ms, failed requests by kind, dropped arrivals, the sending window in s,
    answers by pod IP, failed re-lists by exception type).

    ``refresh()`` (blocking; run in a thread every ``refresh_s``) gives the current targets: the
    list is replaced when it answers with a non-empty one, and kept as it is when it fails or
    finds no Ready pod. A failed re-list is counted in the last Counter, not in the requests'."""
    import aiohttp

    targets = list(targets)

    latencies: list[float] = []
    errors: Counter = Counter()
    refresh_failures: Counter = Counter()
    by_pod: Counter = Counter()
    dropped = 0
    in_flight = 0
    payload = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=max_in_flight, force_close=False)
    timeout = aiohttp.ClientTimeout(total=timeout_s)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(ip: str, port: int) -> None:
            nonlocal in_flight
            url = f"http://{ip}:{port}/v2/models/{MODEL_NAME}/infer"
            start = time.perf_counter()
            try:
                async with session.post(url, data=payload, headers=headers) as resp:
                    await resp.read()
                    if resp.status == 200:
                        latencies.append((time.perf_counter() - start) * 1000.0)
                        by_pod[ip] += 1
                    else:
                        errors[f"HTTP {resp.status}"] += 1
            except TimeoutError:
                errors["timeout"] += 1
            except aiohttp.ClientError as err:
                errors[type(err).__name__] += 1
            finally:
                in_flight -= 1

        async def refresher() -> None:
            nonlocal targets
            while True:
                await asyncio.sleep(refresh_s)
                try:
                    found = await asyncio.to_thread(refresh)
                except Exception as err:  # noqa: BLE001 - the run goes on with the targets it has
                    refresh_failures[type(err).__name__] += 1
                    continue
                if found:
                    targets = list(found)

        loop = asyncio.get_running_loop()
        refreshing = asyncio.create_task(refresher()) if refresh is not None and refresh_s > 0 else None
        t0 = loop.time()
        tasks = []
        for offset in arrivals:
            delay = t0 + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if in_flight >= max_in_flight:
                dropped += 1
                continue
            in_flight += 1
            ip, port = rng.choice(targets)
            tasks.append(asyncio.create_task(one(ip, port)))
        window = loop.time() - t0
        if refreshing is not None:
            refreshing.cancel()
        await asyncio.gather(*tasks)
    return latencies, errors, dropped, window, by_pod, refresh_failures


def model_metadata(ip: str, port: int, timeout_s: float = 5.0) -> dict[str, Any]:
    """The model's metadata from the pod at ``ip``:``port``, checked (:func:`checked_metadata`)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{ip}:{port}/v2/models/{MODEL_NAME}", timeout=timeout_s) as r:
            metadata = json.loads(r.read())
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read the model's metadata from {ip}:{port}: {err}") from None
    return checked_metadata(metadata, f"the pod at {ip}:{port}")


def run(args: argparse.Namespace) -> int:
    check_bounds(args.rps, args.seconds, args.batch, args.max_in_flight)
    if not args.refresh_seconds >= 0 or not math.isfinite(args.refresh_seconds):
        raise UsageError(f"--refresh-seconds {args.refresh_seconds:g}: expected >= 0")
    if not 0 < args.timeout <= 600:
        raise UsageError(f"--timeout {args.timeout:g}: expected 0 < T <= 600 seconds")
    from .explain import _client

    client, namespace = _client(args.kubeconfig, args.context, args.namespace)
    from kubernetes import client as k8s
    from kubernetes.client.rest import ApiException

    selector = f"{names.LABEL_INSTANCE}={args.name},{names.LABEL_COMPONENT}={names.COMPONENT_SERVING}"

    def list_pods() -> list[dict[str, Any]]:
        pods = k8s.CoreV1Api(client).list_namespaced_pod(namespace, label_selector=selector, _request_timeout=5)
        return [client.sanitize_for_serialization(p) for p in pods.items]

    with client:
        try:
            pod_dicts = list_pods()
        except ApiException as err:
            print(f"hybridplace loadgen: listing the pods of {namespace}/{args.name} failed: {err.status} "
                  f"{err.reason}", file=sys.stderr)
            return 1
        except Exception as err:  # the transport's errors; anything else is re-raised
            if not unreachable(err):
                raise
            print(f"hybridplace loadgen: cannot reach the API server at {client.configuration.host}: "
                  f"{' '.join(str(err).split())}", file=sys.stderr)
            return 1
        targets = serving_targets(pod_dicts)
        if not targets:
            raise UsageError(f"InferenceDeployment {namespace}/{args.name} has no Ready serving pod "
                             f"({len(pod_dicts)} pod(s) found)")
        body = infer_body(model_metadata(*targets[0]), args.batch)
        rng = random.Random(args.seed)
        arrivals = poisson_arrivals(args.rps, args.seconds, rng)
        latencies, errors, dropped, window, by_pod, refresh_failures = asyncio.run(
            drive(targets, body, arrivals, rng=rng, max_in_flight=args.max_in_flight, timeout_s=args.timeout,
                  refresh=lambda: serving_targets(list_pods()), refresh_s=args.refresh_seconds))
    result = summarize(args.rps, args.seconds, latencies, errors, dropped, max(window, args.seconds), by_pod,
                       refresh_failures)
    if args.output == "json":
        print(json.dumps(asdict(result)))
    else:
        print(format_result(f"{namespace}/{args.name}", len(targets), result))
    return 1 if result.sent and result.ok == 0 else 0


def format_result(what: str, pods: int, r: LoadResult) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    lines = [
        f"loadgen {what}: {pods} pod(s), asked {r.asked_rps:g} requests/s for {r.seconds:g} s",
        f"  sent {r.sent} ({r.achieved_rps:.1f} requests/s achieved), ok {r.ok}, errors {r.errors}, "
        f"dropped {r.dropped}",
        f"  latency (client) p50 {ms(r.p50_ms)} ms, p95 {ms(r.p95_ms)} ms, p99 {ms(r.p99_ms)} ms",
    ]
    if r.error_kinds:
        lines.append("  errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(r.error_kinds.items())))
    if r.refresh_failures:
        lines.append("  pod re-list failures (not requests): "
                     + ", ".join(f"{k} x{v}" for k, v in sorted(r.refresh_failures.items()))
                     + "; the pods known were kept")
    return "\n".join(lines)
