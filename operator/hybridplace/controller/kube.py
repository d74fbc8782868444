"""Kubernetes I/O for the reconcilers: plain JSON over the `kubernetes` client's connection.

Objects stay dicts (no generated model classes): cheaper in time and memory with thousands of
objects, and exactly what the builders produce. Thread-safe: worker threads share one client.
"""

from __future__ import annotations

import collections
import copy
import json
import logging
import re
import secrets
import threading
import urllib.parse
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import kubernetes
import urllib3

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
    "Lease": "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
    "HTTPRoute": "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes",
    "Gateway": "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/gateways",
}


# Lists over every namespace (or cluster-scoped kinds), to fill the state before work starts.
LIST_ALL = {
    "Node": "/api/v1/nodes",
    "HardwarePool": "/apis/hybridplace.io/v1alpha1/hardwarepools",
    "ModelProfile": "/apis/hybridplace.io/v1alpha1/modelprofiles",
    "Job": "/apis/batch/v1/jobs",
    "Deployment": "/apis/apps/v1/deployments",
    "Service": "/api/v1/services",
    "InferenceDeployment": "/apis/hybridplace.io/v1alpha1/inferencedeployments",
}


_RESOURCE = re.compile(r"/(?:apis/[^/]+|api)/v[^/]+(?:/namespaces/[^/]+)?/([a-z]+)(?:/[^/]+)?(/status)?$")


def _resource(path: str) -> str:
    """`deployments`, `inferencedeployments/status`, ... of an API path, for counting calls."""
    found = _RESOURCE.match(path)
    return (found.group(1) + (found.group(2) or "")) if found else path


def _object_path(kind: str, namespace: str | None, name: str) -> str:
    """The path of one object, its name quoted as one path segment: a name from a user's spec
    (a Gateway's) can never reach another path ("../..")."""
    return f"{PATHS[kind].format(ns=urllib.parse.quote(namespace or '', safe=''))}/{urllib.parse.quote(name, safe='')}"


class ApiError(Exception):
    """Every failure of a call: an HTTP status from the API server, or status 0 when no answer
    came (connection refused or reset, timeout). `retry_after` is the server's Retry-After, in
    seconds, when it sent one (429, 503)."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None = None):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Worth trying again unchanged: no answer, too many requests, or a server error."""
        return self.status == 0 or self.status == 429 or self.status >= 500


def retry_after_seconds(value: str | None, limit: float = 600.0) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds, capped at `limit`; None when
    absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), limit)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def client_retries() -> urllib3.util.Retry:
    """urllib3's own retries: a refused connection is tried twice more at once; nothing else.
    urllib3's default would also sleep out a 429's or 503's Retry-After inside the calling
    reconcile worker (three times over); instead the error comes back with `retry_after` and
    the work queue waits that long without holding a thread."""
    return urllib3.util.Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0,
                              respect_retry_after_header=False, raise_on_status=False, backoff_factor=0.1)


def load_client(kubeconfig: str | None = None, pool_size: int = 16) -> kubernetes.client.ApiClient:
    """An ApiClient from the in-cluster service account, else the kubeconfig."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    configuration.retries = client_retries()
    return kubernetes.client.ApiClient(configuration)


class Kube:
    """The few calls the reconcilers make."""

    def __init__(self, client: kubernetes.client.ApiClient, timeout: tuple[float, float] = (5, 15),
                 instance: str = "hybridplace", metrics: Any = None, events_namespace: str = "default",
                 list_timeout: tuple[float, float] = (5, 60)):
        self.client = client
        # Where Events about cluster-scoped objects (HardwarePools) go: `default`, as for Nodes
        # (the API server accepts such an Event nowhere else but kube-system; handlers.py).
        self.events_namespace = events_namespace
        self.metrics = metrics  # a metrics.Metrics: every call counted by verb, resource and result
        # (connect, read) seconds. A reconcile's calls wait at most 15 s for an answer: those
        # that place run one InferenceDeployment at a time (the shared room's lock), so one
        # hung call holds every placement up for that long. A list of every object may take
        # longer on a big cluster: `list_timeout`.
        self.timeout = timeout
        self.list_timeout = list_timeout
        self.instance = instance[:128]  # which replica posts Events (their reportingInstance)
        self._calls: collections.Counter[str] = collections.Counter()  # "METHOD kind", for the log
        self._calls_lock = threading.Lock()

    def with_timeout(self, timeout: tuple[float, float]) -> Kube:
        """The same client, counted the same way, waiting at most `timeout` (connect, read)."""
        other = copy.copy(self)
        other.timeout = timeout
        return other

    def take_calls(self) -> collections.Counter[str]:
        """The calls counted since the last take, and a fresh count (safe while others call)."""
        with self._calls_lock:
            calls, self._calls = self._calls, collections.Counter()
        return calls

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        timeout: tuple[float, float] | None = None,
    ) -> dict[str, Any]:
        resource = _resource(path)
        with self._calls_lock:
            self._calls[f"{method} {resource}"] += 1
        status = 0
        try:
            status, result = self._request(method, path, body, query, content_type, timeout or self.timeout)
            return result
        except ApiError as err:
            status = err.status
            raise
        finally:
            if self.metrics is not None:
                self.metrics.api_call(method, resource, status)

    def _request(self, method: str, path: str, body: Any, query: list[tuple[str, str]] | None,
                 content_type: str, timeout: tuple[float, float]) -> tuple[int, dict[str, Any]]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, body, _ = self.client.param_serialize(
            method, path, query_params=query or [], header_params=headers, body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(method, url, header_params=headers, body=body,
                                            _request_timeout=timeout)
            data = response.read()
        except kubernetes.client.ApiException as err:
            raise ApiError(err.status or 0, str(err.reason or ""), str(err.body or "")[:500],
                           retry_after_seconds((err.headers or {}).get("Retry-After"))) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            # No answer: refused, reset, timed out (urllib3 wraps these in MaxRetryError,
            # ProtocolError, ReadTimeoutError). Callers see one error type for every failure.
            raise ApiError(0, type(err).__name__, f"{method} {_resource(path)}: {err}"[:500]) from None
        if not 200 <= response.status <= 299:
            try:
                status = json.loads(data or b"{}")
            except ValueError:
                status = {}
            if not isinstance(status, dict):
                status = {}
            retry_after = retry_after_seconds(response.getheader("Retry-After"))
            raise ApiError(response.status, str(status.get("reason", response.reason)),
                           str(status.get("message", (data or b"").decode(errors="replace")))[:500], retry_after)
        # A 2xx that is not a JSON object (an HTML page from a proxy in the way, a cut-off
        # body) is no usable answer: status 0, transient, tried again like a dropped connection.
        try:
            result = json.loads(data) if data else {}
        except ValueError as err:
            raise ApiError(0, "InvalidResponse", f"{method} {_resource(path)}: HTTP {response.status} "
                                                 f"with a body that is not JSON: {err}") from None
        if not isinstance(result, dict):
            raise ApiError(0, "InvalidResponse", f"{method} {_resource(path)}: HTTP {response.status} "
                                                 f"with a JSON {type(result).__name__}, not an object") from None
        return response.status, result

    # -- discovery ---------------------------------------------------------------------------

    def resources_served(self, group_version: str) -> set[str] | None:
        """The resources (plural names) the API server serves in `group_version` (for example
        gateway.networking.k8s.io/v1); None when it serves no such group version (404: its
        CRDs are not installed). Discovery is open to every authenticated user."""
        try:
            found = self.request("GET", f"/apis/{group_version}")
        except ApiError as err:
            if err.status == 404:
                return None
            raise
        return {str(r.get("name")) for r in found.get("resources") or [] if isinstance(r, dict)}

    # -- objects -----------------------------------------------------------------------------

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", _object_path(kind, namespace, name))
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str | None, label_selector: str = "") -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        return self.request("GET", PATHS[kind].format(ns=namespace), query=query,
                            timeout=self.list_timeout).get("items", [])

    def list_all(self, kind: str, label_selector: str = "", namespaces: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Every object of `kind` in every namespace (or, with `namespaces`, in those only: one
        list each, which is all a namespaced Role allows), each with its kind set."""
        return self.list_all_versioned(kind, label_selector, namespaces)[0]

    def list_all_versioned(self, kind: str, label_selector: str = "",
                           namespaces: tuple[str, ...] = ()) -> tuple[list[dict[str, Any]], int]:
        """`list_all`, and the list's resourceVersion (as a number; 0 when it is not one). With
        `namespaces`, one list per namespace and the smallest of their versions: a key missing
        from every list is then only called stale when it was seen before all of them."""
        query = [("labelSelector", label_selector)] if label_selector else []
        if namespaces and kind in PATHS and "{ns}" in PATHS[kind]:
            paths = [PATHS[kind].format(ns=ns) for ns in namespaces]
        else:
            paths = [LIST_ALL[kind]]
        items: list[dict[str, Any]] = []
        versions = []
        for path in paths:
            found = self.request("GET", path, query=query, timeout=self.list_timeout)
            try:
                versions.append(int((found.get("metadata") or {}).get("resourceVersion") or 0))
            except ValueError:
                versions.append(0)
            items += [{**item, "kind": kind} for item in found.get("items") or []]
        return items, min(versions)

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

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT `obj` whole; its metadata.resourceVersion makes it fail with 409 if it changed."""
        meta = obj["metadata"]
        return self.request("PUT", f"{PATHS[obj['kind']].format(ns=meta.get('namespace'))}/{meta['name']}", obj,
                            query=[("fieldManager", FIELD_MANAGER)])

    def delete(self, kind: str, namespace: str | None, name: str, uid: str | None = None) -> None:
        """Delete, in the background; with `uid`, only that very object (never a namesake)."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", _object_path(kind, namespace, name), body)
        except ApiError as err:
            if err.status not in (404, 409):
                raise

    def patch_status(self, kind: str, namespace: str | None, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource; returns the updated object."""
        return self.request(
            "PATCH", f"{_object_path(kind, namespace, name)}/status", {"status": status},
            content_type="application/merge-patch+json",
        )

    def merge_patch(self, kind: str, namespace: str | None, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (lists replaced whole, null removes a key) as the operator's manager."""
        return self.request(
            "PATCH", _object_path(kind, namespace, name), patch,
            query=[("fieldManager", FIELD_MANAGER)], content_type="application/merge-patch+json",
        )

    def patch_annotations(self, kind: str, namespace: str | None, name: str, annotations: dict[str, str]) -> None:
        self.request(
            "PATCH", _object_path(kind, namespace, name), {"metadata": {"annotations": annotations}},
            content_type="application/merge-patch+json",
        )

    # -- events ------------------------------------------------------------------------------

    def event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> ApiError | None:
        """Post a core/v1 Event about `involved` (shown by kubectl describe). Never raises:
        an Event is a courtesy, not a reason to fail a reconcile. Returns the error, if any, so
        that a caller may try again when it is transient."""
        meta = involved.get("metadata", {})
        namespace = meta.get("namespace") or self.events_namespace
        now = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{str(meta.get('name'))[:200]}.{secrets.token_hex(8)}", "namespace": namespace},
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
            "reportingInstance": self.instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self.request("POST", PATHS["Event"].format(ns=namespace), event)
        except ApiError as err:
            log.warning("could not post event %s for %s: %s", reason, meta.get("name"), err)
            return err
        return None
