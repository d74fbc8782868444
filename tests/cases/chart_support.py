"""Shared by the chart's tests: a kubeconfig that authenticates with a ServiceAccount token (the
operator then runs with exactly the chart's RBAC), and the seed example for builtin:delay."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def token_kubeconfig(kubeconfig: str, token: str, path: Path) -> str:
    admin = yaml.safe_load(Path(kubeconfig).read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "local", "cluster": cluster["cluster"]}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": "sa"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def seed_as_delay() -> dict:
    """examples/seed's ModelProfiles and InferenceDeployment (mode Apply), for builtin:delay."""
    from hybridplace.api import builtin_digest
    from hybridplace.builders import names

    digest = builtin_digest("delay")
    items = []
    for doc in yaml.safe_load_all((REPO / "examples" / "seed" / "modelprofiles.yaml").read_text()):
        if not doc:
            continue
        doc["spec"]["model"] = {"digest": digest, "name": "builtin:delay", "format": "torchscript"}
        doc["metadata"]["name"] = names.profile_name(digest, doc["spec"]["pool"])
        doc["metadata"]["labels"][names.LABEL_DIGEST] = names.digest_label(digest)
        items.append(doc)
    infd = yaml.safe_load((REPO / "examples" / "seed" / "inferencedeployment.yaml").read_text())
    infd["spec"]["model"] = {"builtin": "delay"}
    infd["spec"]["placement"]["mode"] = "Apply"
    return {"apiVersion": "v1", "kind": "List", "items": [*items, infd]}
