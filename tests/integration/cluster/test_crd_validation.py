"""The API server enforces a CRD's schema: a violating object is rejected with the schema's
message. Uses a throwaway CRD made here (the project's CRDs are tested with the API's tests)."""

import json
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.cluster


@pytest.fixture
def widget_crd(api_client, wait_until):
    ext = client.ApiextensionsV1Api(api_client)
    group = f"t{uuid.uuid4().hex[:8]}.hptest.example.com"
    name = f"widgets.{group}"
    schema = {"type": "object", "properties": {"spec": {
        "type": "object", "required": ["replicas"],
        "properties": {
            "replicas": {"type": "integer", "minimum": 1},
            "mode": {"type": "string", "enum": ["Apply", "Recommend"]},
            "minReplicas": {"type": "integer"}, "maxReplicas": {"type": "integer"}},
        "x-kubernetes-validations": [{
            "rule": "!has(self.minReplicas) || !has(self.maxReplicas) || "
                    "self.minReplicas <= self.maxReplicas",
            "message": "minReplicas must not exceed maxReplicas"}]}}}
    ext.create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": schema}}]}})

    def established():
        crd = ext.read_custom_resource_definition(name)
        return any(c.type == "Established" and c.status == "True"
                   for c in (crd.status.conditions or []))

    wait_until(established, timeout=30, what=f"CRD {name} to be established")
    yield group
    ext.delete_custom_resource_definition(name)


def create_widget(api_client, group, namespace, spec):
    api = client.CustomObjectsApi(api_client)
    body = {"apiVersion": f"{group}/v1", "kind": "Widget",
            "metadata": {"name": f"w-{uuid.uuid4().hex[:6]}"}, "spec": spec}
    return api.create_namespaced_custom_object(group, "v1", namespace, "widgets", body)


def rejection(api_client, group, namespace, spec):
    with pytest.raises(ApiException) as err:
        create_widget(api_client, group, namespace, spec)
    assert err.value.status == 422, err.value.body
    return json.loads(err.value.body)["message"]


def test_valid_object_is_accepted(api_client, widget_crd, namespace, wait_until):
    # The new resource may take a moment to be served after Established.
    created = wait_until(lambda: _try_create(api_client, widget_crd, namespace,
                                             {"replicas": 2, "mode": "Apply"}),
                         timeout=30, what="the widgets resource to be served")
    assert created["spec"] == {"replicas": 2, "mode": "Apply"}


def test_schema_violations_are_rejected_with_their_message(api_client, widget_crd, namespace,
                                                           wait_until):
    wait_until(lambda: _try_create(api_client, widget_crd, namespace, {"replicas": 1}),
               timeout=30, what="the widgets resource to be served")
    message = rejection(api_client, widget_crd, namespace, {"replicas": 0})
    assert "spec.replicas" in message and "greater than or equal to 1" in message, message
    message = rejection(api_client, widget_crd, namespace, {"replicas": 1, "mode": "Sometimes"})
    assert "spec.mode" in message and '"Apply", "Recommend"' in message, message
    message = rejection(api_client, widget_crd, namespace, {})
    assert "spec.replicas" in message and "Required value" in message, message
    message = rejection(api_client, widget_crd, namespace,
                        {"replicas": 1, "minReplicas": 5, "maxReplicas": 2})
    assert "minReplicas must not exceed maxReplicas" in message, message


def _try_create(api_client, group, namespace, spec):
    try:
        return create_widget(api_client, group, namespace, spec)
    except ApiException as e:
        if e.status == 404:  # not served yet
            return None
        raise
