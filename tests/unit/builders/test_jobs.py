"""The benchmark Job: one per (digest, pool), on the pool's nodes, restricted, bounded."""

from pathlib import Path

from cases.api_objects import inference_deployment
from hybridplace.api import builtin_digest, load_objects, parse_object
from hybridplace.builders import names
from hybridplace.builders.jobs import NON_RETRIABLE_EXIT_CODES, build_benchmark_job

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
POOLS = {o.obj.name: o.obj for o in load_objects([EXAMPLES / "hardwarepools.yaml"])}


def job_for(pool_name, **spec_changes):
    obj = inference_deployment("demo")
    obj["metadata"]["namespace"] = "team-a"
    obj["spec"].update(spec_changes)
    infd = parse_object(obj)
    return build_benchmark_job(
        namespace="team-a", digest=builtin_digest("mlp"), model=infd.spec.model,
        benchmark=infd.spec.benchmark, pool=POOLS[pool_name], image="worker:test",
        ttl_seconds=600, backoff_limit=1,
    )


def test_name_depends_only_on_digest_and_pool():
    a, b = job_for("cpu-standard"), job_for("cpu-standard", slo={"latencyMs": 999})
    assert a["metadata"]["name"] == b["metadata"]["name"]
    assert a["metadata"]["name"] != job_for("gpu-t4")["metadata"]["name"]
    assert len(a["metadata"]["name"]) <= 52


def test_gpu_job_requests_the_gpu_and_tolerates_the_taint():
    job = job_for("gpu-t4")
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["nodeSelector"] == {"hybridplace.io/pool": "gpu-t4"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert container["args"][container["args"].index("--device") + 1] == "cuda"


def test_cpu_job_has_no_gpu_and_no_toleration():
    pod = job_for("cpu-standard")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "tolerations" not in pod
    assert "nvidia.com/gpu" not in container["resources"]["requests"]
    assert container["args"][container["args"].index("--device") + 1] == "cpu"


def test_pod_meets_the_restricted_pod_security_standard():
    pod = job_for("cpu-standard")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = pod["containers"][0]["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}


def test_deadline_backoff_and_labels_for_the_pod_runner():
    job = job_for("cpu-standard", benchmark={"budgetSeconds": 120, "batchSizes": [8, 1, 2]})
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 120
    assert spec["backoffLimit"] == 1
    args = spec["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--batch-sizes") + 1] == "1,2,8"
    assert args[args.index("--deadline-seconds") + 1] == "105"
    assert spec["template"]["metadata"]["labels"][names.LABEL_COMPONENT] == "benchmark"
    rule = spec["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob" and 14 in rule["onExitCodes"]["values"]
    assert NON_RETRIABLE_EXIT_CODES == sorted(NON_RETRIABLE_EXIT_CODES)


def test_uri_model_passes_digest_format_and_inputs():
    digest = "sha256:" + "ab" * 32
    job = job_for("cpu-standard", model={
        "uri": "https://models.example.com/m.pt", "digest": digest,
        "inputs": [{"name": "x", "shape": [3, 32, 32]}],
    })
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--model") + 1] == "https://models.example.com/m.pt"
    assert args[args.index("--input") + 1] == "x:3x32x32:float32"
    assert args[args.index("--format") + 1] == "torchscript"


def test_the_worker_gets_its_node_name_and_shared_memory():
    pod = job_for("cpu-standard")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert {"name": "HP_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in container["env"]
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]


def env_of(job):
    return {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_the_search_and_the_slo_reach_the_worker_as_environment_variables():
    obj = inference_deployment("demo")
    obj["spec"]["slo"] = {"latencyMs": 40, "percentile": 99}
    obj["spec"].setdefault("benchmark", {}).update(budgetPoints=9, budgetSearchSeconds=120)
    infd = parse_object(obj)
    job = build_benchmark_job(
        namespace="team-a", digest=builtin_digest("mlp"), model=infd.spec.model,
        benchmark=infd.spec.benchmark, pool=POOLS["cpu-standard"], image="worker:test",
        ttl_seconds=600, backoff_limit=1, slo=infd.spec.slo,
    )
    env = env_of(job)
    assert env["HP_SEARCH"] == "Adaptive"  # the default
    assert (env["HP_SLO_MS"], env["HP_SLO_PERCENTILE"]) == ("40", "99")
    assert (env["HP_BUDGET_POINTS"], env["HP_BUDGET_SECONDS"]) == ("9", "120")
    grid = env_of(job_for("cpu-standard", benchmark={"search": "Grid"}))
    assert grid["HP_SEARCH"] == "Grid" and "HP_SLO_MS" not in grid and "HP_BUDGET_POINTS" not in grid


def test_extended_resources_and_hugepages_get_limits_equal_to_requests():
    # Kubernetes refuses a pod that requests an extended resource or hugepages without a limit
    # equal to it; cpu and memory keep only the limits the pool gives.
    from cases.api_objects import hardware_pool
    from hybridplace.builders.jobs import pool_resources

    obj = hardware_pool("fpga")
    obj["spec"]["accelerator"] = {"type": "cpu"}
    obj["spec"]["replicaResources"] = {
        "requests": {"cpu": "4", "memory": "16Gi", "example.com/fpga": 2, "hugepages-2Mi": "1Gi"},
        "limits": {"memory": "16Gi"}}
    obj["spec"]["nodeAllocatable"] = {"cpu": "8", "memory": "32Gi", "example.com/fpga": 4, "hugepages-2Mi": "4Gi"}
    resources = pool_resources(parse_object(obj))
    assert resources["limits"] == {"memory": "16Gi", "example.com/fpga": "2", "hugepages-2Mi": "1Gi"}
    assert resources["requests"]["cpu"] == "4"
