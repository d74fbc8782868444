"""The serving Deployment and Services: owned, on the chosen pool, with the decided batch."""

from pathlib import Path

from cases.api_objects import inference_deployment
from hybridplace.api import builtin_digest, load_objects, parse_object
from hybridplace.builders import names
from hybridplace.builders.serving import build_service, build_serving_deployment

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
POOLS = {o.obj.name: o.obj for o in load_objects([EXAMPLES / "hardwarepools.yaml"])}


def infd():
    obj = inference_deployment("sentiment")
    obj["metadata"].update(namespace="team-a", uid="1234-uid")
    return parse_object(obj)


def deployment(pool="gpu-t4", replicas=3, batch=16):
    return build_serving_deployment(
        infd=infd(), digest=builtin_digest("mlp"), pool=POOLS[pool], replicas=replicas,
        batch_size=batch, image="worker:test",
    )


def test_owned_by_the_inference_deployment_as_controller():
    ref = deployment()["metadata"]["ownerReferences"][0]
    assert ref == {"apiVersion": "hybridplace.io/v1alpha1", "kind": "InferenceDeployment",
                   "name": "sentiment", "uid": "1234-uid", "controller": True, "blockOwnerDeletion": True}


def test_replicas_pool_and_batch_from_the_decision():
    dep = deployment(replicas=3, batch=16)
    pod = dep["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert dep["spec"]["replicas"] == 3
    assert pod["nodeSelector"] == {"hybridplace.io/pool": "gpu-t4"}
    assert args[args.index("--max-batch-size") + 1] == "16"
    assert args[args.index("--instance-kind") + 1] == "gpu"
    assert args[args.index("--max-queue-delay-ms") + 1] == "2"


def test_selector_matches_template_and_is_per_pool():
    dep = deployment(pool="cpu-standard")
    selector = dep["spec"]["selector"]["matchLabels"]
    template = dep["spec"]["template"]["metadata"]["labels"]
    assert all(template[k] == v for k, v in selector.items())
    assert selector[names.LABEL_POOL] == "cpu-standard"
    assert dep["metadata"]["name"] == "sentiment-cpu-standard"


def test_services_select_one_pool_or_all():
    per_pool = build_service(infd=infd(), pool="gpu-t4")
    umbrella = build_service(infd=infd())
    assert per_pool["spec"]["selector"] == {names.LABEL_INSTANCE: "sentiment", names.LABEL_POOL: "gpu-t4"}
    assert umbrella["spec"]["selector"] == {names.LABEL_INSTANCE: "sentiment"}
    assert [p["port"] for p in umbrella["spec"]["ports"]] == [8000, 8001, 8002]


def test_long_names_are_shortened_stably():
    long = "x" * 60
    assert len(names.serving_name(long, "gpu-t4")) <= 63
    assert names.serving_name(long, "gpu-t4") == names.serving_name(long, "gpu-t4")
    assert names.serving_name(long, "gpu-t4") != names.serving_name(long, "cpu-standard")


def test_triton_binds_at_the_pods_own_ip_and_explains_a_crash():
    """Every replica serves the same ports at its own address (the downward API's podIP), and a
    crash without a termination message reports its output's tail."""
    container = deployment("cpu-standard")["spec"]["template"]["spec"]["containers"][0]
    env = {"name": "HP_ADDRESS", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}
    assert env in container["env"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}


def test_the_queue_delay_is_written_as_a_plain_decimal():
    # :g wrote 0.00005 as "5e-05"; the worker's option wants a plain number.
    for value, text in ((0.00005, "0.00005"), (2, "2"), (0, "0"), (0.5, "0.5"), (1000, "1000")):
        obj = inference_deployment("sentiment")
        obj["metadata"].update(namespace="team-a", uid="1234-uid")
        obj["spec"].setdefault("serving", {})["maxQueueDelayMs"] = value
        dep = build_serving_deployment(
            infd=parse_object(obj), digest=builtin_digest("mlp"), pool=POOLS["gpu-t4"], replicas=1,
            batch_size=8, image="worker:test",
        )
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[args.index("--max-queue-delay-ms") + 1] == text


def test_the_workers_part_of_a_start_ends_a_minute_before_the_startup_probe_gives_up():
    # Otherwise a start slower than the probe (a large model download) is killed by the kubelet
    # with nothing said, and starts over; the worker's Timeout goes to the termination message.
    # After it execs tritonserver, Triton loads the model within what is left.
    from hybridplace_worker.cli import parse_args

    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    args = parse_args(container["args"])
    probe = container["startupProbe"]
    assert args.deadline_seconds + 60 <= probe["periodSeconds"] * probe["failureThreshold"]
    assert args.deadline_seconds >= 300  # room for a 2 GiB download and Triton's load
