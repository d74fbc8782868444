#!/usr/bin/env python3
"""The local pod runner: runs benchmark pods of the local cluster as local processes.

kwok's nodes have no kubelet, and kwok is told to leave pods labelled
hybridplace.io/component=benchmark alone (cluster/kwok-stages.yaml). This process does the
kubelet's part for them: for each such pod bound to a kwok node it runs the single container's
command + args on this machine and reports through the pods/status subresource, as a kubelet
would: Running while the process runs, then Succeeded (exit 0) or Failed, with the container's
terminated state (exit code, reason Completed or Error, startedAt, finishedAt) and the termination
message.

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
- resources, securityContext, probes, volumes and restartPolicy OnFailure are not emulated;
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
import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

BENCHMARK_SELECTOR = "hybridplace.io/component=benchmark"
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
MAX_MESSAGE_BYTES = 4096
MERGE_PATCH = "application/merge-patch+json"
# Marks every process the runner starts (inherited by their children), so `down` can find them.
MARK_ENV = "HP_LOCAL_RUNNER_STATE"
KILL_GRACE_SECONDS = 5  # between SIGTERM and SIGKILL

log = logging.getLogger("podrunner")


def now():
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Runner:
    def __init__(self, kubeconfig, state_dir, concurrency):
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

    def watch_pods(self):
        core = self.api()
        first = True
        while not self.stopping.is_set():
            try:
                listing = core.list_pod_for_all_namespaces(label_selector=BENCHMARK_SELECTOR)
                for pod in listing.items:
                    self.consider(core, pod, first)
                first = False
                # A pod deleted while the watch was down shows up only by its absence.
                present = {pod.metadata.uid for pod in listing.items}
                with self.lock:
                    gone = [uid for uid in self.running if uid not in present]
                for uid in gone:
                    self.kill(uid, "pod gone")
                stream = watch.Watch().stream(
                    core.list_pod_for_all_namespaces, label_selector=BENCHMARK_SELECTOR,
                    resource_version=listing.metadata.resource_version, timeout_seconds=60)
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

    def forget(self, uid):
        """Drop a deleted pod's bookkeeping, unless a worker still holds it (it cleans up)."""
        with self.lock:
            if uid not in self.running:
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

        workdir = Path(tempfile.mkdtemp(prefix=f"{ns}.{name}.", dir=self.work_root))
        term_log = workdir / "termination-log"
        term_log.touch()
        env = self.environment(core, pod, container, workdir, term_log)
        argv = [expand(a, env) for a in (container.command or []) + (container.args or [])]
        # The container's terminationMessagePath means the temporary file here.
        message_path = container.termination_message_path or "/dev/termination-log"
        argv = [a.replace(message_path, str(term_log)) for a in argv]
        env = {k: v.replace(message_path, str(term_log)) for k, v in env.items()}
        out_path = self.pod_logs / f"{ns}.{name}.log"
        log.info("starting %s/%s: %s", ns, name, argv)
        deadline = pod.spec.active_deadline_seconds
        started_at, started = now(), time.monotonic()
        with open(out_path, "wb") as out:
            try:
                proc = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
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
        message = term_log.read_bytes()[:MAX_MESSAGE_BYTES].decode(errors="replace")
        if not message.strip() and code != 0 and \
                container.termination_message_policy == "FallbackToLogsOnError":
            message = out_path.read_bytes()[-2048:].decode(errors="replace")
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

    def environment(self, core, pod, container, workdir, term_log):
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
                env[var.name] = self.value_from(core, pod, container, var.value_from)
        env[MARK_ENV] = str(self.state_dir)  # the container may not unset it
        return env

    def value_from(self, core, pod, container, src):
        ns = pod.metadata.namespace
        if src.field_ref:
            path = src.field_ref.field_path
            fields = {"metadata.name": pod.metadata.name, "metadata.namespace": ns,
                      "metadata.uid": pod.metadata.uid, "spec.nodeName": pod.spec.node_name,
                      "spec.serviceAccountName": pod.spec.service_account_name,
                      "status.hostIP": "127.0.0.1", "status.podIP": "127.0.0.1"}
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

    def container_status(self, pod, ready, state, container_id=None):
        c = pod.spec.containers[0]
        status = {"name": c.name, "image": c.image, "imageID": "", "ready": ready,
                  "started": "running" in state, "restartCount": 0, "state": state}
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
        log.info("watching pods labelled %s on kwok nodes (%d at a time)", BENCHMARK_SELECTOR,
                 self.concurrency)
        self.stopping.wait()
        # The workers kill what they run (our children must not outlive us) and report it.
        for t in threads[1:]:
            t.join(timeout=KILL_GRACE_SECONDS + 10)


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
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    runner = Runner(args.kubeconfig, args.state_dir, max(1, args.concurrency))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.stopping.set())
    runner.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
