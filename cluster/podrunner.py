#!/usr/bin/env python3
"""The local pod runner: runs benchmark and serving pods of the local cluster as local processes.

kwok's nodes have no kubelet, and kwok is told to leave pods labelled
hybridplace.io/component=benchmark or =serving alone (cluster/kwok-stages.yaml). This process does
the kubelet's part for them: for each such pod bound to a kwok node it runs the single
container's command + args on this machine and reports through the pods/status subresource, as a
kubelet would.

Benchmark pods (run to completion): Running while the process runs, then Succeeded (exit 0) or
Failed, with the container's terminated state (exit code, reason Completed or Error, startedAt,
finishedAt) and the termination message.

Serving pods (long-running, restartPolicy Always), each in a thread of its own:
- the pod gets an IP of its own from --pod-cidr (inside 127.0.0.0/8, so it is this machine's
  loopback), written as status.podIP; the container finds it as status.podIP through the downward
  API and binds its ports there, so every replica has the same ports at its own address;
- its declared container ports are checked free at that address first (PortInUse otherwise);
- the readinessProbe and livenessProbe (httpGet, at the pod's IP) are run as a kubelet runs them:
  Ready follows the readiness probe; a liveness failure past its failureThreshold restarts the
  container; the startupProbe holds both off until it succeeds;
- an exited process is restarted with the kubelet's back-off (--restart-backoff seconds,
  doubling to 300 s; CrashLoopBackOff while waiting), restartCount counted, lastState kept;
- deleting the pod sends SIGTERM to the container's process group, SIGKILL after the pod's
  terminationGracePeriodSeconds (at most 30 s here);
- at most --max-serving run at once; past that a pod waits, Pending, with reason
  LocalRunnerCapacity and a message saying so (never an out-of-memory host).

Locally:
- the image is ignored: the command runs with this machine's programs. PATH starts with the
  project environment's bin folder, so `python` and `hybridplace-worker` resolve to it. A
  container without `command` cannot run (there is no image entrypoint) and fails with reason
  NoCommand;
- the working folder is a fresh temporary folder (the container's workingDir is ignored);
- the environment is the container's `envFrom` and `env` (value, fieldRef, resourceFieldRef,
  configMapKeyRef, secretKeyRef; $(VAR) references expanded as the kubelet does), plus PATH,
  HOME, LANG, TMPDIR, HOSTNAME and HP_TERMINATION_LOG;
- HP_TERMINATION_LOG names a temporary file standing in for terminationMessagePath, whose path
  is also replaced by the file's wherever it appears in the command, args and env. The file's
  first 4096 bytes become the termination message (with terminationMessagePolicy
  FallbackToLogsOnError: the output's tail when the file is empty and the process failed);
- resources, securityContext, volumes and restartPolicy OnFailure are not emulated (probes only
  for serving pods, as above);
- spec.activeDeadlineSeconds counts from the process start: past it the process is killed and
  the pod fails with reason DeadlineExceeded. Deleting the pod kills the process;
- at most --concurrency pods run at once (default 1: benchmarks must not share the cores); the
  others wait, Pending, with container state waiting/LocalRunnerQueued.

Started by cluster/localcluster.py (`up`), stopped by `down`; logs in <state>/logs/, each
pod's output in <state>/logs/pods/.
"""

import argparse
import base64
import contextlib
import ipaddress
import logging
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

COMPONENT_LABEL = "hybridplace.io/component"
BENCHMARK_SELECTOR = f"{COMPONENT_LABEL}=benchmark"
RUNNER_SELECTOR = f"{COMPONENT_LABEL} in (benchmark,serving)"
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
MAX_MESSAGE_BYTES = 4096
MERGE_PATCH = "application/merge-patch+json"
# Marks every process the runner starts (inherited by their children), so `down` can find them.
MARK_ENV = "HP_LOCAL_RUNNER_STATE"
KILL_GRACE_SECONDS = 5  # between SIGTERM and SIGKILL
MAX_GRACE_SECONDS = 30  # a serving pod's terminationGracePeriodSeconds, capped
MAX_BACKOFF_SECONDS = 300  # the kubelet's cap on the crash-loop back-off

log = logging.getLogger("podrunner")


def now():
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Runner:
    def __init__(self, kubeconfig, state_dir, concurrency, pod_cidr="127.1.128.0/17",
                 max_serving=10, restart_backoff=10.0):
        self.kubeconfig = kubeconfig
        self.state_dir = Path(state_dir)
        self.work_root = self.state_dir / "runner"
        self.pod_logs = self.state_dir / "logs" / "pods"
        self.work_root.mkdir(parents=True, exist_ok=True)
        self.pod_logs.mkdir(parents=True, exist_ok=True)
        self.queue = queue.Queue()
        self.concurrency = concurrency
        self.lock = threading.Lock()
        self.claimed = set()  # pod UIDs queued or running
        self.deleted = set()  # pod UIDs being deleted
        self.running = {}  # pod UID -> Popen
        self.kwok_nodes = set()
        self.stopping = threading.Event()
        self.ips = IpAllocator(pod_cidr)
        self.max_serving = max_serving
        self.restart_backoff = restart_backoff
        self.serving = {}  # pod UID -> ServingPod (running, waiting for a slot, or backing off)
        self.serving_slots = 0  # serving pods holding one of the max_serving slots

    def api(self):
        """A client per thread (the generated clients are not documented as thread-safe)."""
        return client.CoreV1Api(config.new_client_from_config(config_file=self.kubeconfig))

    # ---- watching -----------------------------------------------------------------------------

    def is_kwok_node(self, core, name):
        if name in self.kwok_nodes:
            return True
        try:
            node = core.read_node(name)
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        key, value = KWOK_NODE_ANNOTATION
        if (node.metadata.annotations or {}).get(key) == value:
            self.kwok_nodes.add(name)
            return True
        return False

    def consider(self, core, pod, first_listing):
        uid = pod.metadata.uid
        if pod.metadata.deletion_timestamp is not None:
            self.kill(uid, "pod deleted")
            return
        if not pod.spec.node_name or not self.is_kwok_node(core, pod.spec.node_name):
            return
        if (pod.metadata.labels or {}).get(COMPONENT_LABEL) == "serving":
            self.consider_serving(pod, first_listing)
            return
        with self.lock:
            if uid in self.claimed:
                return
            phase = pod.status.phase if pod.status else None
            if phase == "Running" and first_listing:
                # Running, but not by us: a previous runner was stopped mid-run.
                self.claimed.add(uid)
                lost = True
            elif phase == "Pending":
                self.claimed.add(uid)
                lost = False
            else:
                return
        if lost:
            self.finish(core, pod, None, exit_code=137, reason="Error", phase="Failed",
                        pod_reason="LocalRunnerLost",
                        message="the local pod runner restarted while this pod ran")
            return
        self.set_status(core, pod, {"phase": "Pending", "containerStatuses": [
            self.container_status(pod, ready=False, state={"waiting": {
                "reason": "LocalRunnerQueued",
                "message": f"waiting for the local pod runner ({self.concurrency} at a time)"}})]})
        log.info("queued %s/%s", pod.metadata.namespace, pod.metadata.name)
        self.queue.put(pod)

    def consider_serving(self, pod, first_listing):
        uid = pod.metadata.uid
        with self.lock:
            if uid in self.serving or uid in self.claimed:
                return
            phase = pod.status.phase if pod.status else None
            if phase not in (None, "Pending", "Running"):
                return
            # A pod Running when we start was run by an earlier runner: its process died with
            # that runner (the runner kills what it runs), so run it again, as a kubelet restarting
            # would.
            self.claimed.add(uid)
            sp = ServingPod(self, pod, restarts=restart_count(pod) + (1 if phase == "Running" else 0))
            self.serving[uid] = sp
        threading.Thread(target=sp.run, name=f"serve-{pod.metadata.name}", daemon=True).start()

    def watch_pods(self):
        core = self.api()
        first = True
        while not self.stopping.is_set():
            try:
                listing = core.list_pod_for_all_namespaces(label_selector=RUNNER_SELECTOR)
                for pod in listing.items:
                    self.consider(core, pod, first)
                first = False
                # A pod deleted while the watch was down shows up only by its absence.
                present = {pod.metadata.uid for pod in listing.items}
                with self.lock:
                    gone = [uid for uid in [*self.running, *self.serving] if uid not in present]
                for uid in gone:
                    self.kill(uid, "pod gone")
                stream = watch.Watch().stream(
                    core.list_pod_for_all_namespaces, label_selector=RUNNER_SELECTOR,
                    resource_version=listing.metadata.resource_version, timeout_seconds=60,
                    # A client-side read timeout too: an API server that dies mid-watch must not
                    # leave this thread waiting on a dead connection for ever.
                    _request_timeout=(10, 90))
                for event in stream:
                    pod = event["object"]
                    if event["type"] == "DELETED":
                        self.kill(pod.metadata.uid, "pod deleted")
                        self.forget(pod.metadata.uid)
                    elif event["type"] in ("ADDED", "MODIFIED"):
                        self.consider(core, pod, False)
                    if self.stopping.is_set():
                        break
            except ApiException as e:
                if e.status != 410:  # 410 Gone: resource version too old; list again
                    log.warning("watch failed: %s; retrying", e.reason)
                    time.sleep(2)
            except Exception as e:  # connection trouble: the API server may be restarting
                log.warning("watch failed: %r; retrying", e)
                time.sleep(2)

    # ---- running ------------------------------------------------------------------------------

    def kill(self, uid, why):
        """Mark the pod as going away; the worker running it kills its process."""
        with self.lock:
            if uid in self.running and uid not in self.deleted:
                log.info("%s: killing pid %d", why, self.running[uid].pid)
            self.deleted.add(uid)
            sp = self.serving.get(uid)
        if sp is not None:
            sp.wake.set()

    def forget(self, uid):
        """Drop a deleted pod's bookkeeping, unless a worker still holds it (it cleans up)."""
        with self.lock:
            if uid not in self.running and uid not in self.serving:
                self.claimed.discard(uid)
                self.deleted.discard(uid)

    def worker(self):
        core = self.api()
        while not self.stopping.is_set():
            try:
                pod = self.queue.get(timeout=1)
            except queue.Empty:
                continue
            try:
                self.run(core, pod)
                if pod.metadata.uid in self.deleted:
                    self.forget(pod.metadata.uid)
            except Exception:
                log.exception("running %s/%s failed", pod.metadata.namespace, pod.metadata.name)
                with contextlib.suppress(Exception):
                    self.finish(core, pod, None, exit_code=128, reason="Error", phase="Failed",
                                pod_reason="LocalRunnerError",
                                message="the local pod runner could not run this pod; see its log")

    def run(self, core, queued):
        ns, name, uid = queued.metadata.namespace, queued.metadata.name, queued.metadata.uid
        try:
            pod = core.read_namespaced_pod(name, ns)
        except ApiException as e:
            if e.status == 404:
                return
            raise
        if pod.metadata.uid != uid or pod.metadata.deletion_timestamp or uid in self.deleted:
            return
        containers = pod.spec.containers
        container = containers[0]
        if len(containers) != 1 or not container.command:
            why = ("has no command (the local runner ignores images, so it cannot use an "
                   "image's entrypoint)" if len(containers) == 1 else
                   f"has {len(containers)} containers; the local runner runs exactly one")
            self.finish(core, pod, None, exit_code=128, reason="Error", phase="Failed",
                        pod_reason="NoCommand" if len(containers) == 1 else "Unsupported",
                        message=f"container {container.name} {why}")
            return

        workdir, term_log, argv, env, out_path = self.prepare(core, pod, container)
        log.info("starting %s/%s: %s", ns, name, argv)
        deadline = pod.spec.active_deadline_seconds
        started_at, started = now(), time.monotonic()
        with open(out_path, "wb") as out:
            try:
                proc = spawn(argv, workdir, env, out)
            except OSError as e:
                shutil.rmtree(workdir, ignore_errors=True)
                self.finish(core, pod, started_at, exit_code=127, reason="Error", phase="Failed",
                            pod_reason="StartError", message=f"cannot start {argv[0]}: {e}")
                return
            with self.lock:
                self.running[uid] = proc
            self.set_status(core, pod, {
                "phase": "Running", "startTime": started_at,
                "conditions": conditions(pod, ready=True),
                "containerStatuses": [self.container_status(pod, ready=True, state={
                    "running": {"startedAt": started_at}}, container_id=f"local://{proc.pid}")]})
            deadline_hit = False
            killed_at = None
            while proc.poll() is None:
                if killed_at is None:
                    deadline_hit = deadline is not None and time.monotonic() - started > deadline
                    if deadline_hit or uid in self.deleted or self.stopping.is_set():
                        killed_at = time.monotonic()
                        signal_group(proc, signal.SIGTERM)
                elif time.monotonic() - killed_at > KILL_GRACE_SECONDS:
                    signal_group(proc, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.5)
            signal_group(proc, signal.SIGKILL)  # anything it left behind in its group
            with self.lock:
                self.running.pop(uid, None)
        code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        log.info("%s/%s exited with %d", ns, name, code)
        message = termination_message(container, code, term_log, out_path)
        shutil.rmtree(workdir, ignore_errors=True)
        if uid in self.deleted:
            return  # the pod is going away; nothing to report to
        if killed_at is not None and not deadline_hit:  # stopped with the runner
            self.finish(core, pod, started_at, exit_code=code, reason="Error", phase="Failed",
                        pod_reason="LocalRunnerStopped", term_message=message, pid=proc.pid,
                        message="the local pod runner was stopped while this pod ran")
        elif deadline_hit:
            self.finish(core, pod, started_at, exit_code=code, reason="Error", phase="Failed",
                        pod_reason="DeadlineExceeded", term_message=message, pid=proc.pid,
                        message=f"Pod was active on the node longer than the specified "
                                f"deadline ({deadline} s)")
        else:
            self.finish(core, pod, started_at, exit_code=code,
                        reason="Completed" if code == 0 else "Error",
                        phase="Succeeded" if code == 0 else "Failed", term_message=message,
                        pid=proc.pid)

    def prepare(self, core, pod, container, pod_ip="127.0.0.1"):
        """A fresh working folder, the termination-message file, the command line and the
        environment of `container`, and where its output goes."""
        ns, name = pod.metadata.namespace, pod.metadata.name
        workdir = Path(tempfile.mkdtemp(prefix=f"{ns}.{name}.", dir=self.work_root))
        term_log = workdir / "termination-log"
        term_log.touch()
        env = self.environment(core, pod, container, workdir, term_log, pod_ip)
        argv = [expand(a, env) for a in (container.command or []) + (container.args or [])]
        # The container's terminationMessagePath means the temporary file here.
        message_path = container.termination_message_path or "/dev/termination-log"
        argv = [a.replace(message_path, str(term_log)) for a in argv]
        env = {k: v.replace(message_path, str(term_log)) for k, v in env.items()}
        return workdir, term_log, argv, env, self.pod_logs / f"{ns}.{name}.log"

    def environment(self, core, pod, container, workdir, term_log, pod_ip="127.0.0.1"):
        env = {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "HOME": os.environ.get("HOME", str(workdir)),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "TMPDIR": str(workdir),
            "HOSTNAME": pod.metadata.name,
            "HP_TERMINATION_LOG": str(term_log),
            MARK_ENV: str(self.state_dir),
        }
        ns = pod.metadata.namespace
        for src in container.env_from or []:  # env (below) wins over envFrom, as in a kubelet
            prefix = src.prefix or ""
            if src.config_map_ref:
                data = core.read_namespaced_config_map(src.config_map_ref.name, ns).data or {}
                env.update({prefix + k: v for k, v in data.items()})
            if src.secret_ref:
                data = core.read_namespaced_secret(src.secret_ref.name, ns).data or {}
                env.update({prefix + k: base64.b64decode(v).decode(errors="replace")
                            for k, v in data.items()})
        for var in container.env or []:
            if var.value_from is None:
                env[var.name] = expand(var.value or "", env)
            else:
                env[var.name] = self.value_from(core, pod, container, var.value_from, pod_ip)
        env[MARK_ENV] = str(self.state_dir)  # the container may not unset it
        return env

    def value_from(self, core, pod, container, src, pod_ip="127.0.0.1"):
        ns = pod.metadata.namespace
        if src.field_ref:
            path = src.field_ref.field_path
            fields = {"metadata.name": pod.metadata.name, "metadata.namespace": ns,
                      "metadata.uid": pod.metadata.uid, "spec.nodeName": pod.spec.node_name,
                      "spec.serviceAccountName": pod.spec.service_account_name,
                      "status.hostIP": "127.0.0.1", "status.podIP": pod_ip,
                      "status.podIPs": pod_ip}
            m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
            if m:
                return (getattr(pod.metadata, m.group(1)) or {}).get(m.group(2), "")
            return fields.get(path, "")
        if src.resource_field_ref:
            res = src.resource_field_ref.resource  # e.g. limits.cpu
            kind, _, name = res.partition(".")
            values = getattr(container.resources, kind, None) or {}
            return str(values.get(name, ""))
        if src.config_map_key_ref:
            ref = src.config_map_key_ref
            return (core.read_namespaced_config_map(ref.name, ns).data or {}).get(ref.key, "")
        if src.secret_key_ref:
            ref = src.secret_key_ref
            data = core.read_namespaced_secret(ref.name, ns).data or {}
            return base64.b64decode(data.get(ref.key, "")).decode(errors="replace")
        return ""

    # ---- status -------------------------------------------------------------------------------

    def container_status(self, pod, ready, state, container_id=None, restarts=0, last_state=None):
        c = pod.spec.containers[0]
        status = {"name": c.name, "image": c.image, "imageID": "", "ready": ready,
                  "started": "running" in state, "restartCount": restarts, "state": state}
        if last_state:
            status["lastState"] = last_state
        if container_id:  # local://<pid>
            status["containerID"] = container_id
        return status

    def set_status(self, core, pod, status):
        try:
            core.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace,
                                             {"status": status}, _content_type=MERGE_PATCH)
        except ApiException as e:
            if e.status != 404:
                raise

    def finish(self, core, pod, started_at, *, exit_code, reason, phase, pod_reason=None,
               message="", term_message=None, pid=None):
        """Write the terminal status. The container's message is the termination message; a
        runner-side failure (pod_reason) also explains itself in the pod's reason/message."""
        finished = now()
        terminated = {"exitCode": exit_code, "reason": reason, "startedAt": started_at or finished,
                      "finishedAt": finished}
        if pid:
            terminated["containerID"] = f"local://{pid}"
        container_message = term_message if term_message is not None else message
        if container_message:
            terminated["message"] = container_message
        status = {"phase": phase, "conditions": conditions(pod, ready=False, reason=(
                      "PodCompleted" if phase == "Succeeded" else "PodFailed")),
                  "containerStatuses": [self.container_status(
                      pod, ready=False, state={"terminated": terminated},
                      container_id=f"local://{pid}" if pid else None)]}
        if started_at is None:
            status["startTime"] = finished
        if pod_reason:
            status["reason"] = pod_reason
            status["message"] = message
        self.set_status(core, pod, status)

    # ---- lifecycle ----------------------------------------------------------------------------

    def serve(self):
        threads = [threading.Thread(target=self.watch_pods, name="watch", daemon=True)]
        threads += [threading.Thread(target=self.worker, name=f"run-{i}", daemon=True)
                    for i in range(self.concurrency)]
        for t in threads:
            t.start()
        log.info("watching pods labelled %s on kwok nodes (benchmarks %d at a time, serving "
                 "pods %d at most, IPs from %s)", RUNNER_SELECTOR, self.concurrency,
                 self.max_serving, self.ips.network)
        self.stopping.wait()
        # The workers kill what they run (our children must not outlive us) and report it.
        with self.lock:
            serving = list(self.serving.values())
        for sp in serving:
            sp.wake.set()
        for t in threads[1:]:
            t.join(timeout=KILL_GRACE_SECONDS + 10)
        for sp in serving:
            sp.done.wait(timeout=MAX_GRACE_SECONDS + 5)


class IpAllocator:
    """Pod IPs from one network (inside 127.0.0.0/8 locally), lowest free first, never the
    network's first or last address."""

    def __init__(self, cidr):
        self.network = ipaddress.ip_network(cidr)
        if not self.network.subnet_of(ipaddress.ip_network("127.0.0.0/8")):
            raise ValueError(f"--pod-cidr {cidr} is not inside 127.0.0.0/8: the local pods "
                             "must only use this machine's loopback addresses")
        self.lock = threading.Lock()
        self.used = set()

    def take(self):
        with self.lock:
            for ip in self.network.hosts():
                if ip not in self.used:
                    self.used.add(ip)
                    return str(ip)
        raise RuntimeError(f"no free pod IP left in {self.network}")

    def give_back(self, ip):
        with self.lock:
            self.used.discard(ipaddress.ip_address(ip))


def restart_count(pod):
    statuses = (pod.status.container_statuses if pod.status else None) or []
    return statuses[0].restart_count or 0 if statuses else 0


def port_in_use(ip, port):
    """True if something on this machine already listens at ip:port (a bind test)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As servers bind: connections of an earlier run in TIME_WAIT do not block the port.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
        except OSError:
            return True
    return False


def http_probe(probe, ip, container, timeout=1.0):
    """Run one httpGet probe (a tcpSocket probe connects; others pass): True if it succeeds."""
    if probe is None:
        return True
    def resolve(port):
        if isinstance(port, str) and not port.isdigit():
            for p in container.ports or []:
                if p.name == port:
                    return p.container_port
            return None
        return int(port)
    if probe.http_get is not None:
        port = resolve(probe.http_get.port)
        if port is None:
            return False
        path = probe.http_get.path or "/"
        try:
            with urllib.request.urlopen(f"http://{ip}:{port}{path}", timeout=timeout) as r:
                return 200 <= r.status < 400
        except (OSError, ValueError):
            return False
    if probe.tcp_socket is not None:
        port = resolve(probe.tcp_socket.port)
        try:
            with socket.create_connection((ip, port), timeout=timeout):
                return True
        except (OSError, TypeError):
            return False
    return True


class ServingPod:
    """One serving pod: its process, restarts, probes and status, in a thread of its own."""

    def __init__(self, runner, pod, restarts=0):
        self.runner = runner
        self.pod = pod
        self.uid = pod.metadata.uid
        self.ns, self.name = pod.metadata.namespace, pod.metadata.name
        self.container = pod.spec.containers[0]
        self.restarts = restarts
        self.last_state = None
        self.wake = threading.Event()  # set when the pod is deleted or the runner stops
        self.done = threading.Event()
        self.ip = None
        self.slot = False
        self.unwritten = None  # a status write that failed, retried by the supervising loop

    @property
    def going(self):
        return self.uid in self.runner.deleted or self.runner.stopping.is_set()

    def status(self, core, *, phase, ready, state, container_id=None):
        """Write the pod's status; a failed write (the API server restarting) is kept and
        retried from the supervising loop, never the end of the pod's process."""
        self.unwritten = None
        try:
            self._write_status(core, phase=phase, ready=ready, state=state, container_id=container_id)
        except Exception as err:  # noqa: BLE001 - urllib3's and the client's errors alike
            log.warning("%s/%s: status not written (%s); retrying", self.ns, self.name, err)
            self.unwritten = {"phase": phase, "ready": ready, "state": state, "container_id": container_id}

    def retry_status(self, core):
        if self.unwritten is not None:
            self.status(core, **self.unwritten)

    def _write_status(self, core, *, phase, ready, state, container_id=None):
        cs = self.runner.container_status(self.pod, ready=ready, state=state,
                                          container_id=container_id, restarts=self.restarts,
                                          last_state=self.last_state)
        status = {"phase": phase, "conditions": conditions(self.pod, ready=ready),
                  "containerStatuses": [cs]}
        if self.ip:
            status.update(podIP=self.ip, podIPs=[{"ip": self.ip}], hostIP="127.0.0.1",
                          hostIPs=[{"ip": "127.0.0.1"}])
        self.runner.set_status(core, self.pod, status)

    def waiting(self, core, reason, message, phase="Pending"):
        self.status(core, phase=phase, ready=False,
                    state={"waiting": {"reason": reason, "message": message}})

    def run(self):
        core = self.runner.api()
        try:
            self._run(core)
        except Exception:
            log.exception("serving %s/%s failed", self.ns, self.name)
            with contextlib.suppress(Exception):
                self.waiting(core, "LocalRunnerError",
                             "the local pod runner could not run this pod; see its log")
        finally:
            if self.ip:
                self.runner.ips.give_back(self.ip)
            with self.runner.lock:
                self.runner.serving.pop(self.uid, None)
                if self.slot:
                    self.runner.serving_slots -= 1
                self.runner.claimed.discard(self.uid)
                self.runner.deleted.discard(self.uid)
            self.done.set()

    def take_slot(self, core):
        """Wait for one of the --max-serving slots; False if the pod goes away first."""
        told = False
        while not self.going:
            with self.runner.lock:
                if self.runner.serving_slots < self.runner.max_serving:
                    self.runner.serving_slots += 1
                    self.slot = True
                    return True
            if not told:
                self.waiting(core, "LocalRunnerCapacity",
                             f"the local pod runner runs at most {self.runner.max_serving} serving "
                             "pods at once (--max-serving, HP_RUNNER_MAX_SERVING); this one "
                             "starts when another stops")
                told = True
            self.wake.wait(2)
        return False

    def _run(self, core):
        c = self.container
        if len(self.pod.spec.containers) != 1 or not c.command:
            why = ("has no command (the local runner ignores images, so it cannot use an "
                   "image's entrypoint)" if len(self.pod.spec.containers) == 1 else
                   f"has {len(self.pod.spec.containers)} containers; the local runner runs one")
            self.waiting(core, "NoCommand", f"container {c.name} {why}")
            return
        if not self.take_slot(core):
            return
        self.ip = self.runner.ips.take()
        while not self.going:
            busy = [p.container_port for p in c.ports or [] if port_in_use(self.ip, p.container_port)]
            if busy:
                self.waiting(core, "PortInUse", f"port(s) {', '.join(map(str, busy))} at "
                             f"{self.ip} are already in use by another process on this machine")
                self.wake.wait(self.backoff())
                continue
            code, message = self.run_once(core)
            if self.going:
                return
            self.restarts += 1
            finished = now()
            self.last_state = {"terminated": {
                "exitCode": code, "reason": "Completed" if code == 0 else "Error",
                "message": message[-MAX_MESSAGE_BYTES:], "startedAt": self.started_at,
                "finishedAt": finished}}
            delay = self.backoff()
            log.info("%s/%s exited with %d; restarting in %.0f s (restart %d)", self.ns,
                     self.name, code, delay, self.restarts)
            self.waiting(core, "CrashLoopBackOff", f"back-off {delay:.0f}s restarting failed "
                         f"container={c.name} pod={self.name}: exit code {code}: "
                         f"{message.strip()[-300:]}", phase="Running")
            self.wake.wait(delay)

    def backoff(self):
        return min(MAX_BACKOFF_SECONDS, self.runner.restart_backoff * 2 ** max(0, self.restarts - 1))

    def run_once(self, core):
        """Start the container's process, probe it until it exits or the pod goes away;
        (exit code, termination message)."""
        c = self.container
        workdir, term_log, argv, env, out_path = self.runner.prepare(core, self.pod, c, self.ip)
        log.info("starting %s/%s at %s: %s", self.ns, self.name, self.ip, argv)
        self.started_at = now()
        with open(out_path, "ab") as out:
            try:
                proc = spawn(argv, workdir, env, out)
            except OSError as e:
                shutil.rmtree(workdir, ignore_errors=True)
                return 127, f"cannot start {argv[0]}: {e}"
            started = time.monotonic()
            with self.runner.lock:
                self.runner.running[self.uid] = proc
            try:
                self.supervise(core, proc, started)
            finally:
                signal_group(proc, signal.SIGKILL)
                with self.runner.lock:
                    self.runner.running.pop(self.uid, None)
        code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        message = termination_message(c, code, term_log, out_path)
        shutil.rmtree(workdir, ignore_errors=True)
        return code, message

    def supervise(self, core, proc, started):
        """Probe the running process as a kubelet would, until it exits or the pod goes away."""
        c = self.container
        startup, readiness, liveness = c.startup_probe, c.readiness_probe, c.liveness_probe
        started_ok = startup is None
        ready = None
        fails = {"startup": 0, "liveness": 0}
        next_probe = {"startup": 0.0, "readiness": 0.0, "liveness": 0.0}
        killed_at = None
        grace = min(MAX_GRACE_SECONDS, self.pod.spec.termination_grace_period_seconds
                    if self.pod.spec.termination_grace_period_seconds is not None else 30)

        def write(is_ready):
            self.status(core, phase="Running", ready=is_ready,
                        state={"running": {"startedAt": self.started_at}},
                        container_id=f"local://{proc.pid}")

        write(False)
        while proc.poll() is None:
            t = time.monotonic() - started
            if self.going:
                if killed_at is None:
                    killed_at = time.monotonic()
                    signal_group(proc, signal.SIGTERM)
                elif time.monotonic() - killed_at > grace:
                    signal_group(proc, signal.SIGKILL)
            else:
                def due(kind, probe, t=t):
                    return probe is not None and t >= max(next_probe[kind],
                                                          probe.initial_delay_seconds or 0)
                if not started_ok and due("startup", startup):
                    next_probe["startup"] = t + (startup.period_seconds or 10)
                    if http_probe(startup, self.ip, c, startup.timeout_seconds or 1):
                        started_ok = True
                    else:
                        fails["startup"] += 1
                        if fails["startup"] >= (startup.failure_threshold or 3):
                            log.info("%s/%s failed its startup probe; restarting", self.ns, self.name)
                            signal_group(proc, signal.SIGKILL)
                if started_ok and (due("readiness", readiness) or readiness is None and ready is None):
                    period = readiness.period_seconds or 10 if readiness else 10
                    next_probe["readiness"] = t + min(period, 1 if not ready else period)
                    ok = http_probe(readiness, self.ip, c,
                                    (readiness.timeout_seconds or 1) if readiness else 1)
                    if ok != ready:
                        ready = ok
                        write(ready)
                if started_ok and due("liveness", liveness):
                    next_probe["liveness"] = t + (liveness.period_seconds or 10)
                    if http_probe(liveness, self.ip, c, liveness.timeout_seconds or 1):
                        fails["liveness"] = 0
                    else:
                        fails["liveness"] += 1
                        if fails["liveness"] >= (liveness.failure_threshold or 3):
                            log.info("%s/%s failed its liveness probe; restarting", self.ns, self.name)
                            signal_group(proc, signal.SIGKILL)
            self.retry_status(core)
            self.wake.wait(0.25)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)


def spawn(argv, workdir, env, out):
    """The container's process, in a process group of its own (so the whole group can be
    signalled), output to `out`. OSError when it cannot start."""
    return subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)


def termination_message(container, code, term_log, out_path):
    """The container's termination message: its file's first 4096 bytes or, with
    FallbackToLogsOnError, the output's tail when the file is empty and the process failed."""
    message = term_log.read_bytes()[:MAX_MESSAGE_BYTES].decode(errors="replace")
    if not message.strip() and code != 0 and container.termination_message_policy == "FallbackToLogsOnError":
        message = out_path.read_bytes()[-2048:].decode(errors="replace")
    return message


def conditions(pod, ready, reason=None):
    t = now()
    out = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": t},
           {"type": "Initialized", "status": "True", "lastTransitionTime": t}]
    for kind in ("ContainersReady", "Ready"):
        c = {"type": kind, "status": "True" if ready else "False", "lastTransitionTime": t}
        if reason:
            c["reason"] = reason
        out.append(c)
    return out


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text, env):
    """Kubernetes-style $(VAR) expansion: defined variables are replaced, undefined references
    are left as written, and $$ escapes a dollar."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR.sub(sub, text)


def signal_group(proc, sig):
    """Signal the process group the container process leads (it and whatever it started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--state-dir", required=True, help="the local cluster's state folder")
    parser.add_argument("--concurrency", type=int,
                        default=int(os.environ.get("HP_RUNNER_CONCURRENCY", "1")),
                        help="pods run at once (default $HP_RUNNER_CONCURRENCY or 1)")
    parser.add_argument("--pod-cidr", default=os.environ.get("HP_RUNNER_POD_CIDR", "127.1.128.0/17"),
                        help="where serving pods' IPs come from; inside 127.0.0.0/8")
    parser.add_argument("--max-serving", type=int,
                        default=int(os.environ.get("HP_RUNNER_MAX_SERVING", "10")),
                        help="serving pods run at once (default $HP_RUNNER_MAX_SERVING or 10)")
    parser.add_argument("--restart-backoff", type=float,
                        default=float(os.environ.get("HP_RUNNER_RESTART_BACKOFF_SECONDS", "10")),
                        help="first crash-loop back-off in seconds, doubling to 300 (default 10)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    runner = Runner(args.kubeconfig, args.state_dir, max(1, args.concurrency), args.pod_cidr,
                    max(1, args.max_serving), max(0.5, args.restart_backoff))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.stopping.set())
    runner.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
