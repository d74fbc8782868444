"""The local pod runner's serving pods (hybridplace.io/component=serving): their own loopback IP,
readiness from the probe, and bad input as a status a person can read, never a hung pod. The
containers here are small Python servers or the real worker; docs/local-cluster.md."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from kubernetes import client

pytestmark = pytest.mark.cluster

SERVING = {"hybridplace.io/component": "serving", "app": "t"}
# A tiny HTTP server at the pod's IP (from the downward API) on the declared port.
HTTP_SERVER = ("import http.server, os, sys\n"
               "http.server.ThreadingHTTPServer((os.environ['POD_IP'], int(sys.argv[1])), "
               "http.server.SimpleHTTPRequestHandler).serve_forever()\n")


def deployment(name, command, args, port):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {**SERVING, "app": name}}, "spec": {
                         "nodeSelector": {"hybridplace.io/pool": "cpu-standard"},
                         "terminationGracePeriodSeconds": 2,
                         "containers": [{
                             "name": "c", "image": "ignored", "command": command, "args": args,
                             "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                             "ports": [{"name": "http", "containerPort": port}],
                             "terminationMessagePolicy": "FallbackToLogsOnError",
                             "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}}]}}}}


def pod_of(core, namespace, app):
    pods = core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return pods[0] if pods else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_serving_pod_gets_its_own_loopback_ip_and_ready_follows_the_probe(api_client, namespace, wait_until):
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    port = free_port()
    for name in ("one", "two"):
        apps.create_namespaced_deployment(namespace, deployment(name, ["python", "-c", HTTP_SERVER], [str(port)], port))

    def ready(app):
        pod = pod_of(core, namespace, app)
        conds = {c.type: c.status for c in (pod.status.conditions or [])} if pod else {}
        return pod if conds.get("Ready") == "True" else None

    one = wait_until(lambda: ready("one"), timeout=60, what="pod one Ready")
    two = wait_until(lambda: ready("two"), timeout=60, what="pod two Ready")
    ips = {one.status.pod_ip, two.status.pod_ip}
    assert len(ips) == 2 and all(ipaddress.ip_address(ip).is_loopback for ip in ips)  # same port, own address
    def available():
        return apps.read_namespaced_deployment(namespace=namespace, name="one").status.available_replicas

    assert wait_until(available, timeout=30, what="the Deployment available") == 1


def test_a_taken_port_is_a_readable_pod_status(api_client, namespace, wait_until):
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # every address of this machine, the pod's included
        taken.listen()
        port = taken.getsockname()[1]
        apps.create_namespaced_deployment(namespace, deployment("clash", ["python", "-c", HTTP_SERVER], [str(port)],
                                                                port))

        def waiting():
            pod = pod_of(core, namespace, "clash")
            statuses = (pod.status.container_statuses or []) if pod else []
            return statuses[0].state.waiting if statuses and statuses[0].state.waiting else None

        found = wait_until(lambda: (w := waiting()) is not None and w.reason == "PortInUse" and w, timeout=60,
                           what="PortInUse")
        assert str(port) in found.message and "already in use" in found.message


def test_an_unknown_builtin_crash_loops_with_the_workers_reason(api_client, namespace, wait_until):
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    port = free_port()
    apps.create_namespaced_deployment(namespace, deployment(
        "unknown", ["hybridplace-worker"], ["serve", "--model", "builtin:nope", "--http-port", str(port)], port))

    def last_state():
        pod = pod_of(core, namespace, "unknown")
        statuses = (pod.status.container_statuses or []) if pod else []
        return statuses[0] if statuses and statuses[0].last_state and statuses[0].last_state.terminated else None

    status = wait_until(last_state, timeout=90, what="a restart with the last state kept")
    assert status.restart_count >= 1 and not status.ready
    assert status.last_state.terminated.exit_code != 0
    message = status.last_state.terminated.message
    assert "ModelNotFound" in message and "builtin:nope" in message
