"""Kubernetes I/O for the reconcilers: plain JSON over the `kubernetes` client's connection.

Objects stay dicts (no generated model classes): cheaper in time and memory with thousands of
objects, and exactly what the builders produce. Thread-safe: worker threads share one client.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import secrets
from datetime import UTC, datetime
from typing import Any

import kubernetes

log = logging.getLogger(__name__)

FIELD_MANAGER = "hybridplace"

PATHS = {
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "Service": "/api/v1/namespaces/{ns}/services",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Event": "/api/v1/namespaces/{ns}/events",
    "ModelProfile": "/apis/hybridplace.io/v1alpha1/namespaces/{ns}/modelprofiles",
    "InferenceDeployment": "/apis/hybridplace.io/v1alpha1/namespaces/{ns}/inferencedeployments",
    "HardwarePool": "/apis/hybridplace.io/v1alpha1/hardwarepools",
}


# Lists over every namespace (or cluster-scoped kinds), to fill the state before work starts.
LIST_ALL = {
    "Node": "/api/v1/nodes",
    "HardwarePool": "/apis/hybridplace.io/v1alpha1/hardwarepools",
    "ModelProfile": "/apis/hybridplace.io/v1alpha1/modelprofiles",
    "Job": "/apis/batch/v1/jobs",
    "Deployment": "/apis/apps/v1/deployments",
    "Service": "/api/v1/services",
}


_RESOURCE = re.compile(r"/(?:apis/[^/]+|api)/v[^/]+(?:/namespaces/[^/]+)?/([a-z]+)(?:/[^/]+)?(/status)?$")


def _resource(path: str) -> str:
    """`deployments`, `inferencedeployments/status`, ... of an API path, for counting calls."""
    found = _RESOURCE.match(path)
    return (found.group(1) + (found.group(2) or "")) if found else path


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_client(kubeconfig: str | None = None, pool_size: int = 16) -> kubernetes.client.ApiClient:
    """An ApiClient from the in-cluster service account, else the kubeconfig."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    return kubernetes.client.ApiClient(configuration)


class Kube:
    """The few calls the reconcilers make."""

    def __init__(self, client: kubernetes.client.ApiClient):
        self.client = client
        self.calls: collections.Counter[str] = collections.Counter()  # "METHOD kind", for the log

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        self.calls[f"{method} {_resource(path)}"] += 1
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, body, _ = self.client.param_serialize(
            method, path, query_params=query or [], header_params=headers, body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(method, url, header_params=headers, body=body,
                                            _request_timeout=(5, 60))
            data = response.read()
        except kubernetes.client.ApiException as err:  # transport failures
            raise ApiError(err.status or 0, str(err.reason or ""), str(err.body or "")) from None
        if not 200 <= response.status <= 299:
            try:
                status = json.loads(data or b"{}")
            except ValueError:
                status = {}
            raise ApiError(response.status, status.get("reason", str(response.reason)),
                           status.get("message", (data or b"").decode(errors="replace")[:500]))
        return json.loads(data) if data else {}

    # -- objects -----------------------------------------------------------------------------

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", f"{PATHS[kind].format(ns=namespace)}/{name}")
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str | None, label_selector: str = "") -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        return self.request("GET", PATHS[kind].format(ns=namespace), query=query).get("items", [])

    def list_all(self, kind: str, label_selector: str = "") -> list[dict[str, Any]]:
        """Every object of `kind` in every namespace, each with its kind set."""
        query = [("labelSelector", label_selector)] if label_selector else []
        items = self.request("GET", LIST_ALL[kind], query=query).get("items", [])
        return [{**item, "kind": kind} for item in items]

    def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Create `obj`; None if an object of that name already exists."""
        path = PATHS[obj["kind"]].format(ns=obj["metadata"].get("namespace"))
        try:
            return self.request("POST", path, obj, query=[("fieldManager", FIELD_MANAGER)])
        except ApiError as err:
            if err.status == 409:
                return None
            raise

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of the fields in `obj`, owned by the operator's field manager."""
        path = f"{PATHS[obj['kind']].format(ns=obj['metadata'].get('namespace'))}/{obj['metadata']['name']}"
        return self.request(
            "PATCH", path, obj, query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def delete(self, kind: str, namespace: str | None, name: str, uid: str | None = None) -> None:
        """Delete, in the background; with `uid`, only that very object (never a namesake)."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", f"{PATHS[kind].format(ns=namespace)}/{name}", body)
        except ApiError as err:
            if err.status not in (404, 409):
                raise

    def patch_status(self, kind: str, namespace: str | None, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource; returns the updated object."""
        return self.request(
            "PATCH", f"{PATHS[kind].format(ns=namespace)}/{name}/status", {"status": status},
            content_type="application/merge-patch+json",
        )

    def patch_annotations(self, kind: str, namespace: str | None, name: str, annotations: dict[str, str]) -> None:
        self.request(
            "PATCH", f"{PATHS[kind].format(ns=namespace)}/{name}", {"metadata": {"annotations": annotations}},
            content_type="application/merge-patch+json",
        )

    # -- events ------------------------------------------------------------------------------

    def event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Post a core/v1 Event about `involved` (shown by kubectl describe). Never raises:
        an Event is a courtesy, not a reason to fail a reconcile."""
        meta = involved.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        now = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta.get('name')}.{secrets.token_hex(8)}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"), "kind": involved.get("kind"),
                "name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "hybridplace"},
            "reportingComponent": "hybridplace.io/operator",
            "reportingInstance": "hybridplace",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self.request("POST", PATHS["Event"].format(ns=namespace), event)
        except ApiError as err:
            log.warning("could not post event %s for %s: %s", reason, meta.get("name"), err)
