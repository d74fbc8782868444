#!/usr/bin/env python3
"""The local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (fake nodes), all real, all on 127.0.0.1; the local pod runner, which
runs benchmark and serving pods as local processes; and Prometheus, which discovers the serving
pods through the API server and scrapes their Triton metrics.

    localcluster.py up       start the cluster, or reuse it if it is running and healthy
    localcluster.py down     stop every process `up` started (by recorded PID) and remove the state
    localcluster.py status   show the processes, ports and nodes
    localcluster.py up --session PID / release --session PID [--stop]
                             how test runs share one cluster: the last one out stops it if the
                             one that started it asked for that

State lives in $HP_CACHE/clusters/<name>/ (name: --name or $HP_CLUSTER, default "hybridplace"):
kubeconfig, certs/, logs/, etcd/, prometheus/, state.json (ports, PIDs, pod CIDR). Ports are
picked free at start, and each name has a loopback pod network of its own (127.N.0.0/16, N from
the name), so clusters with different names run side by side. Binaries come from cluster/tools/build.sh
(cached under $HP_CACHE/bin by version). Standard library only; needs openssl.
"""

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = Path(os.environ.get("HP_CACHE") or Path(
    os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hybridplace")
NODES_YAML = HERE / "nodes.yaml"
KWOK_STAGES = HERE / "kwok-stages.yaml"
SERVICE_CIDR = "10.96.0.0/16"
PROMETHEUS_CONFIG = HERE / "prometheus.yml"
SCRAPE_INTERVAL = "5s"

VERSIONS_ENV = HERE / "tools" / "versions.env"
GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"

COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
              "podrunner", "prometheus"]


def pod_cidr(name):
    """The cluster's pod network: 127.N.0.0/16 with N (2..251) from the cluster's name, so
    clusters side by side do not share addresses. Pods get addresses on this machine's loopback;
    kwok hands out the lower half (pods it plays), the pod runner the upper half (pods it runs)."""
    n = 2 + int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % 250
    return f"127.{n}.0.0/16", f"127.{n}.0.0/17", f"127.{n}.128.0/17"


def pinned_versions(path=VERSIONS_ENV):
    """KEY=value lines of cluster/tools/versions.env."""
    found = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            found[key.strip()] = value.strip()
    return found


def gateway_api_crds():
    """The folder of the pinned Gateway API release's standard-channel CRDs, from the Go module
    cache (downloaded through the Go module proxy on first use; its hash checked against
    GATEWAY_API_SUM). Nothing is copied into the checkout."""
    pins = pinned_versions()
    version, want = pins["GATEWAY_API_VERSION"], pins.get("GATEWAY_API_SUM")
    out = subprocess.run(["go", "mod", "download", "-json", f"{GATEWAY_API_MODULE}@{version}"],
                         check=True, text=True, capture_output=True, cwd=HERE,
                         env=dict(os.environ, GOWORK="off", GOFLAGS="-mod=mod")).stdout
    found = json.loads(out)
    if want and found.get("Sum") != want:
        raise ClusterError(f"{GATEWAY_API_MODULE}@{version} has hash {found.get('Sum')}, "
                           f"not the pinned {want} (cluster/tools/versions.env)")
    folder = Path(found["Dir"]) / "config" / "crd" / "standard"
    if not folder.is_dir():
        raise ClusterError(f"{GATEWAY_API_MODULE}@{version} has no {folder}")
    return version, folder


def log(msg):
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


class ClusterError(Exception):
    pass


# ---- processes --------------------------------------------------------------------------------

def proc_start_time(pid):
    """The process's start time in clock ticks since boot, or None if it is gone (or a zombie).
    Recorded with each PID so a recycled PID is never mistaken for ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def alive(entry):
    return entry is not None and proc_start_time(entry["pid"]) == entry["start"]


def names_dir(arg, state_dir):
    """Whether a command-line argument names the folder ``state_dir`` or a path inside it
    (``--data-dir=<dir>/etcd``). Whole path components only: the folder of cluster `hybridplace`
    is a prefix of `hybridplace-test`'s, and `make cluster-down` must not stop the other."""
    d = str(state_dir).rstrip("/")
    start = arg.find(d)
    while start != -1:
        end = start + len(d)
        if (start == 0 or arg[start - 1] in "=:,") and (end == len(arg) or arg[end] in "/,:"):
            return True
        start = arg.find(d, start + 1)
    return False


def processes_using(state_dir):
    """PIDs of live processes that `up` started for this cluster, found without state.json: one
    of our cached binaries or the pod runner with this cluster's state folder in its arguments,
    or a process the pod runner started (marked in its environment). Narrow on purpose: a shell
    or editor that merely names a log file is not ours, nor is another cluster's process."""
    mark = f"HP_LOCAL_RUNNER_STATE={state_dir}".encode()
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (p / "cmdline").read_bytes().decode(errors="replace").split("\0")
            ours = argv[0].startswith(str(CACHE / "bin") + "/") or (
                len(argv) > 1 and argv[1] == str(HERE / "podrunner.py"))
            ours = ours and any(names_dir(a, state_dir) for a in argv[1:])
            if not ours:
                ours = mark in (p / "environ").read_bytes().split(b"\0")
            if ours and proc_start_time(int(p.name)):
                found.append(int(p.name))
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- certificates -----------------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_certs(certs):
    """A throwaway CA, the API server's serving certificate, client certificates for the admin
    (group system:masters), the controller manager and the scheduler, the front proxy's CA and
    client certificate, and the service-account signing key. EC P-256 keys: milliseconds."""
    certs.mkdir(parents=True, exist_ok=True)

    def key(name):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", f"{name}.key", cwd=certs)

    def ca(name, subject):
        key(name)
        openssl("req", "-x509", "-new", "-key", f"{name}.key", "-subj", subject,
                "-days", "3650", "-out", f"{name}.crt", cwd=certs)

    def leaf(name, subject, ext, ca="ca"):
        key(name)
        openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr",
                cwd=certs)
        (certs / f"{name}.ext").write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            + ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
                "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "825",
                "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=certs)

    ca("ca", "/CN=hybridplace-local-ca")
    sans = ["IP:127.0.0.1", "IP:10.96.0.1", "DNS:localhost", "DNS:kubernetes",
            "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local"]
    leaf("apiserver", "/CN=kube-apiserver",
         "extendedKeyUsage=serverAuth\nsubjectAltName=" + ",".join(sans))
    client = "extendedKeyUsage=clientAuth"
    leaf("admin", "/O=system:masters/CN=hybridplace-admin", client)
    leaf("controller-manager", "/CN=system:kube-controller-manager", client)
    leaf("scheduler", "/CN=system:kube-scheduler", client)
    # The aggregation layer's front proxy has its own CA, as in kubeadm clusters (without one,
    # every component logs that the requestheader CA bundle is missing).
    ca("front-proxy-ca", "/CN=hybridplace-front-proxy-ca")
    leaf("front-proxy-client", "/CN=front-proxy-client", client, ca="front-proxy-ca")
    key("sa")
    openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=certs)


def write_kubeconfig(path, server, certs, user):
    def b64(name):
        return base64.b64encode((certs / name).read_bytes()).decode()

    # JSON is valid YAML; data embedded so the file is self-contained.
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "hybridplace", "cluster": {
            "server": server, "certificate-authority-data": b64("ca.crt")}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(f"{user}.crt"),
            "client-key-data": b64(f"{user}.key")}}],
        "contexts": [{"name": "hybridplace", "context": {"cluster": "hybridplace", "user": user}}],
        "current-context": "hybridplace",
    }, indent=2) + "\n")
    path.chmod(0o600)


# ---- the cluster ------------------------------------------------------------------------------

class Cluster:
    def __init__(self, name):
        self.name = name
        self.dir = CACHE / "clusters" / name
        self.state_file = self.dir / "state.json"
        self.kubeconfig = self.dir / "kubeconfig"
        self.certs = self.dir / "certs"
        self.logs = self.dir / "logs"

    # state
    def load(self):
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None

    def save(self, state):
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_file)

    @contextlib.contextmanager
    def locked(self):
        """One `up`/`down` at a time per cluster name (parallel make or pytest runs wait)."""
        lock_path = CACHE / "clusters" / f".{self.name}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    # health
    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=str(self.certs / "ca.crt"))
        ctx.load_cert_chain(str(self.certs / "admin.crt"), str(self.certs / "admin.key"))
        return ctx

    def api_get(self, state, path, timeout=5):
        url = f"https://127.0.0.1:{state['ports']['apiserver']}{path}"
        with urllib.request.urlopen(url, context=self.ssl_context(), timeout=timeout) as r:
            return r.read()

    def api_ready(self, state):
        try:
            return self.api_get(state, "/readyz") == b"ok"
        except OSError:
            return False

    def healthy(self, state):
        procs = state.get("processes", {})
        if not (state.get("complete") and all(alive(procs.get(c)) for c in state["components"])):
            return False
        # Its processes are alive: give a busy API server a few chances before calling the
        # cluster broken (and restarting it under whoever else is using it).
        for _ in range(3):
            if self.api_ready(state):
                return True
            time.sleep(2)
        return False

    def kubectl(self, state, *args, **kw):
        return subprocess.run([state["bin"]["kubectl"], "--kubeconfig", str(self.kubeconfig),
                               *args], check=True, text=True, capture_output=True, **kw).stdout

    # sessions: test runs that share one cluster (see attach/release)
    def _sessions(self):
        """Live attached sessions (PID -> start time); forgets those whose process is gone."""
        live = {}
        for f in (self.dir / "sessions").glob("*"):
            entry = {"pid": int(f.name), "start": int(f.read_text() or 0)}
            if alive(entry):
                live[entry["pid"]] = entry
            else:
                f.unlink(missing_ok=True)
        return live

    def _attach(self, pid):
        folder = self.dir / "sessions"
        folder.mkdir(exist_ok=True)
        (folder / str(pid)).write_text(str(proc_start_time(pid)))

    def release(self, pid, stop):
        """Detach session `pid`. Stop the cluster when no other session is attached and either
        `stop` (this session started it) or an earlier starter left that job to the last one."""
        with self.locked():
            if not self.dir.exists():
                return "gone"
            (self.dir / "sessions" / str(pid)).unlink(missing_ok=True)
            handover = self.dir / "stop-when-unused"
            if not (stop or handover.exists()):
                return "left running"
            if self._sessions():
                handover.touch()
                return "left running for the sessions still using it"
            self._down(self.load())
            return "stopped"

    # lifecycle
    def up(self, with_runner=True, session=None, with_prometheus=True):
        started = time.monotonic()
        with self.locked():
            state = self.load()
            if state and self.healthy(state):
                log(f"reusing running cluster '{self.name}'")
                if "gateway_api" not in state:  # started by a checkout from before they were installed
                    self._install_gateway_api(state)
                    self.save(state)
                if session:
                    self._attach(session)
                return state, False, time.monotonic() - started
            if state or self.dir.exists():
                log(f"cluster '{self.name}' is not healthy; restarting it from scratch")
                self._down(state)
            for attempt in (1, 2):
                try:
                    state = self._start(with_runner, with_prometheus)
                    break
                except BaseException as e:
                    log(f"start failed; stopping what was started (logs: {self.logs})")
                    self._down(self.load(), keep_logs=True)
                    # A port picked free can be taken before our server binds it: retry once.
                    if attempt == 2 or "address already in use" not in str(e):
                        raise
                    log("a port was taken meanwhile; starting again with new ports")
            if session:
                self._attach(session)
            return state, True, time.monotonic() - started

    def _spawn(self, state, component, argv, env=None):
        logf = open(self.logs / f"{component}.log", "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=self.dir, env=env)
        logf.close()
        state["processes"][component] = {"pid": proc.pid, "start": proc_start_time(proc.pid)}
        self.save(state)
        return proc

    def _wait(self, what, check, timeout, procs=()):
        """Bounded poll: call check() until true; fail early if a process we wait on exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for component, proc in procs:
                if proc.poll() is not None:
                    tail = (self.logs / f"{component}.log").read_text(errors="replace")[-3000:]
                    raise ClusterError(f"{component} exited with {proc.returncode} while "
                                       f"waiting for {what}; its log ends:\n{tail}")
            with contextlib.suppress(OSError, subprocess.CalledProcessError):
                if check():
                    return
            time.sleep(0.25)
        raise ClusterError(f"timed out after {timeout} s waiting for {what} (logs: {self.logs})")

    def _start(self, with_runner, with_prometheus=True):
        t0 = time.monotonic()
        bins = {}
        tools = [("kubernetes", ["kube-apiserver", "kube-controller-manager", "kube-scheduler",
                                 "kubectl"]), ("etcd", ["etcd"]), ("kwok", ["kwok"])]
        if with_prometheus:
            tools.append(("prometheus", ["prometheus", "promtool"]))
        for tool, names in tools:
            folder = subprocess.run(["bash", str(HERE / "tools" / "build.sh"), tool], check=True,
                                    text=True, stdout=subprocess.PIPE).stdout.strip()
            bins.update({n: str(Path(folder) / n) for n in names})
        for d in (self.certs, self.logs, self.dir / "etcd", self.dir / "kwok"):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        ports = {p: free_port() for p in ("etcd", "etcd_peer", "apiserver",
                                          "controller_manager", "scheduler", "prometheus")}
        components = [c for c in COMPONENTS if (with_runner or c != "podrunner")
                      and (with_prometheus or c != "prometheus")]
        cidr, kwok_cidr, runner_cidr = pod_cidr(self.name)
        state = {"name": self.name, "dir": str(self.dir), "kubeconfig": str(self.kubeconfig),
                 "ports": ports, "bin": bins, "components": components, "processes": {},
                 "pod_cidr": cidr, "complete": False}
        if with_prometheus:
            state["prometheus_url"] = f"http://127.0.0.1:{ports['prometheus']}"
        self.save(state)
        make_certs(self.certs)
        server = f"https://127.0.0.1:{ports['apiserver']}"
        write_kubeconfig(self.kubeconfig, server, self.certs, "admin")
        for user in ("controller-manager", "scheduler"):
            write_kubeconfig(self.dir / f"{user}.kubeconfig", server, self.certs, user)
        shutil.copy(KWOK_STAGES, self.dir / "kwok-stages.yaml")  # the checkout may change later
        c = str(self.certs)

        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        peer_url = f"http://127.0.0.1:{ports['etcd_peer']}"
        etcd = self._spawn(state, "etcd", [
            bins["etcd"], "--name=hp", f"--data-dir={self.dir}/etcd",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=hp={peer_url}", "--log-level=warn",
            # A throwaway test cluster: durability is not worth the fsync latency.
            "--unsafe-no-fsync=true"])
        self._wait("etcd", lambda: b"true" in urllib.request.urlopen(
            etcd_url + "/health", timeout=2).read(), 30, [("etcd", etcd)])

        apiserver = self._spawn(state, "kube-apiserver", [
            bins["kube-apiserver"], f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={c}/apiserver.crt", f"--tls-private-key-file={c}/apiserver.key",
            f"--client-ca-file={c}/ca.crt",
            f"--service-account-key-file={c}/sa.pub",
            f"--service-account-signing-key-file={c}/sa.key",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--authorization-mode=Node,RBAC", f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--requestheader-client-ca-file={c}/front-proxy-ca.crt",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={c}/front-proxy-client.crt",
            f"--proxy-client-key-file={c}/front-proxy-client.key",
            "--allow-privileged=true", "--profiling=false",
            # No kubelets and no in-cluster clients: the `kubernetes` Service needs no endpoints
            # (and Endpoints may not hold the loopback address we advertise).
            "--endpoint-reconciler-type=none"])
        self._wait("the API server (/readyz)", lambda: self.api_ready(state), 90,
                   [("etcd", etcd), ("kube-apiserver", apiserver)])
        log(f"API server ready at {server} after {time.monotonic() - t0:.1f} s")

        waiting = [("etcd", etcd), ("kube-apiserver", apiserver)]
        for component, kubeconfig, port, extra in (
            ("kube-controller-manager", "controller-manager", ports["controller_manager"], [
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={c}/sa.key", f"--root-ca-file={c}/ca.crt",
                f"--cluster-signing-cert-file={c}/ca.crt",
                f"--cluster-signing-key-file={c}/ca.key", "--cluster-name=hybridplace",
                "--kube-api-qps=100", "--kube-api-burst=200"]),
            ("kube-scheduler", "scheduler", ports["scheduler"], []),
        ):
            kc = f"{self.dir}/{kubeconfig}.kubeconfig"
            waiting.append((component, self._spawn(state, component, [
                bins[component], f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}", "--bind-address=127.0.0.1",
                f"--secure-port={port}", "--leader-elect=false", *extra])))
        waiting.append(("kwok", self._spawn(state, "kwok", [
            bins["kwok"], f"--kubeconfig={self.kubeconfig}",
            f"--config={self.dir}/kwok-stages.yaml", "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-lease-duration-seconds=40", f"--cidr={kwok_cidr}"],
            # kwok would also read ~/.kwok/kwok.yaml; keep its work folder inside our state.
            env=dict(os.environ, KWOK_WORKDIR=str(self.dir / "kwok")))))
        if with_runner:
            waiting.append(("podrunner", self._spawn(state, "podrunner", [
                sys.executable, str(HERE / "podrunner.py"), f"--kubeconfig={self.kubeconfig}",
                f"--state-dir={self.dir}", f"--pod-cidr={runner_cidr}"])))
        if with_prometheus:
            config = self.dir / "prometheus.yml"
            targets = self.dir / "operator-targets"  # file_sd: operators started here (docs/local-cluster.md)
            targets.mkdir(exist_ok=True)
            state["operator_targets"] = str(targets)
            config.write_text(PROMETHEUS_CONFIG.read_text().replace(
                "KUBECONFIG", str(self.kubeconfig)).replace("SCRAPE_INTERVAL", SCRAPE_INTERVAL).replace(
                "OPERATOR_TARGETS", str(targets)))
            waiting.append(("prometheus", self._spawn(state, "prometheus", [
                bins["prometheus"], f"--config.file={config}",
                f"--storage.tsdb.path={self.dir / 'prometheus'}",
                "--storage.tsdb.retention.time=6h",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
                "--web.enable-lifecycle", "--log.level=warn"])))

        insecure = ssl._create_unverified_context()  # their serving certs are self-signed
        for component, port in (("kube-controller-manager", ports["controller_manager"]),
                                ("kube-scheduler", ports["scheduler"])):
            self._wait(f"{component} /healthz", lambda port=port: urllib.request.urlopen(
                f"https://127.0.0.1:{port}/healthz", context=insecure, timeout=2).read() == b"ok",
                60, waiting)

        self.kubectl(state, "create", "-f", str(NODES_YAML))
        n_nodes = self.kubectl(state, "get", "nodes", "-o", "name").count("node/")

        def nodes_ready():
            out = self.kubectl(state, "get", "nodes", "-o", "jsonpath={range .items[*]}"
                               "{.status.conditions[?(@.type=='Ready')].status} "
                               "{.spec.taints[*].key}{'\\n'}{end}")
            # Ready, and the node lifecycle controller has lifted the not-ready taint.
            lines = [ln for ln in out.splitlines() if ln.strip()]
            return len(lines) == n_nodes and all(
                ln.startswith("True") and "not-ready" not in ln for ln in lines)

        self._wait(f"{n_nodes} nodes Ready", nodes_ready, 60, waiting)
        self._install_gateway_api(state)
        if with_prometheus:
            self._wait("Prometheus /-/ready", lambda: urllib.request.urlopen(
                f"{state['prometheus_url']}/-/ready", timeout=2).status == 200, 60, waiting)
        # Pods can only be created once the namespace's default ServiceAccount exists.
        self._wait("the default ServiceAccount", lambda: self.kubectl(
            state, "get", "serviceaccount", "default", "-n", "default"), 60, waiting)
        state["complete"] = True
        state["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.save(state)
        return state

    def _install_gateway_api(self, state):
        """The standard Gateway API CRDs, so that a split's HTTPRoute can be created (no Gateway
        implementation runs here: docs/routing.md)."""
        version, folder = gateway_api_crds()
        files = sorted(str(p) for p in folder.glob("*.yaml"))
        self.kubectl(state, "apply", "--server-side", *[a for f in files for a in ("-f", f)])
        self.kubectl(state, "wait", "--for=condition=Established", "--timeout=60s",
                     "crd/httproutes.gateway.networking.k8s.io", "crd/gateways.gateway.networking.k8s.io")
        state["gateway_api"] = version
        log(f"Gateway API CRDs {version} (standard channel) installed")

    def down(self):
        with self.locked():
            return self._down(self.load())

    def _down(self, state, keep_logs=False):
        """Stop every recorded process, in stages (the pod runner first, etcd last): SIGTERM,
        SIGKILL after 15 s. Then check none is left and remove the state folder. Returns the
        PIDs that were stopped."""
        procs = (state or {}).get("processes", {})
        stages = [["podrunner", "prometheus"], ["kwok", "kube-scheduler", "kube-controller-manager"],
                  ["kube-apiserver"], ["etcd"]]
        stopped = []
        for stage in stages:
            stopped += self._stop([procs[c] for c in stage if c in procs])
        # Safety net: anything still running that is provably ours (see processes_using).
        stopped += self._stop([{"pid": p, "start": proc_start_time(p)}
                               for p in processes_using(self.dir)])
        left = [e["pid"] for e in procs.values() if alive(e)] + processes_using(self.dir)
        if left:
            raise ClusterError(f"processes still running after stop: {sorted(set(left))}")
        if self.dir.exists():
            if keep_logs:
                for p in self.dir.iterdir():
                    if p != self.logs:
                        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            else:
                shutil.rmtree(self.dir)
        return stopped

    @staticmethod
    def _stop(entries, grace=15):
        entries = [e for e in entries if alive(e)]
        for e in entries:
            with contextlib.suppress(ProcessLookupError):
                os.kill(e["pid"], signal.SIGTERM)
        for sig, wait in ((signal.SIGKILL, grace), (None, 10)):
            deadline = time.monotonic() + wait
            while any(alive(e) for e in entries) and time.monotonic() < deadline:
                time.sleep(0.05)
            for e in entries:
                if sig and alive(e):
                    log(f"pid {e['pid']} ignored SIGTERM for {grace} s; killing it")
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(e["pid"], sig)
        return [e["pid"] for e in entries]

    def status(self):
        state = self.load()
        if not state:
            print(f"cluster '{self.name}': not running (no state in {self.dir})")
            return 1
        print(f"cluster '{self.name}'  state: {self.dir}  kubeconfig: {self.kubeconfig}")
        for c in state["components"]:
            e = state["processes"].get(c)
            print(f"  {c:25} pid {e['pid'] if e else '-':>8}  "
                  f"{'running' if alive(e) else 'NOT RUNNING'}")
        print("  ports: " + ", ".join(f"{k}={v}" for k, v in state["ports"].items()))
        if state.get("pod_cidr"):
            print(f"  pod network: {state['pod_cidr']} (loopback)")
        if state.get("prometheus_url"):
            print(f"  Prometheus: {state['prometheus_url']}")
        ready = self.api_ready(state)
        print(f"  API server /readyz: {'ok' if ready else 'NOT READY'}")
        if ready:
            print(self.kubectl(state, "get", "nodes", "-L", "hybridplace.io/pool"), end="")
        return 0 if self.healthy(state) else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "kubeconfig", "release"])
    parser.add_argument("--name", default=os.environ.get("HP_CLUSTER", "hybridplace"),
                        help="cluster name (default $HP_CLUSTER or 'hybridplace')")
    parser.add_argument("--no-runner", action="store_true",
                        help="up: do not start the local pod runner")
    parser.add_argument("--no-prometheus", action="store_true",
                        help="up: do not start Prometheus")
    parser.add_argument("--json", action="store_true",
                        help="up: print a JSON summary on stdout instead of text")
    parser.add_argument("--session", type=int, metavar="PID",
                        help="up: attach the process PID (a test run) to the cluster; release: "
                        "detach it, and stop the cluster if no other session uses it and --stop "
                        "is given (or an earlier starter left that to the last session)")
    parser.add_argument("--stop", action="store_true", help="release: see --session")
    args = parser.parse_args()
    cluster = Cluster(args.name)
    try:
        if args.command == "up":
            state, started, seconds = cluster.up(with_runner=not args.no_runner,
                                                 session=args.session,
                                                 with_prometheus=not args.no_prometheus)
            if args.json:
                print(json.dumps({"kubeconfig": state["kubeconfig"], "started": started,
                                  "seconds": round(seconds, 1), "dir": state["dir"],
                                  "prometheus_url": state.get("prometheus_url"),
                                  "pod_cidr": state.get("pod_cidr")}))
            else:
                print(f"cluster '{args.name}' {'started' if started else 'already running'} "
                      f"in {seconds:.1f} s")
                print(f"kubeconfig: {state['kubeconfig']}")
                print(f"  export KUBECONFIG={state['kubeconfig']}")
                if state.get("prometheus_url"):
                    print(f"Prometheus: {state['prometheus_url']}")
        elif args.command == "down":
            pids = cluster.down()
            print(f"cluster '{args.name}' stopped ({len(pids)} processes: "
                  f"{' '.join(map(str, pids)) or 'none'}); state removed")
        elif args.command == "release":
            if not args.session:
                parser.error("release needs --session PID")
            print(f"cluster '{args.name}': {cluster.release(args.session, args.stop)}")
        elif args.command == "status":
            return cluster.status()
        elif args.command == "kubeconfig":
            print(cluster.kubeconfig)
    except (ClusterError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", None) or ""
        log(f"error: {e}\n{detail}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
