"""Pod and container security settings that meet the Kubernetes "restricted" Pod Security
Standard, shared by benchmark and serving pods."""

from __future__ import annotations

from typing import Any

# A fixed non-root UID/GID; the worker images run as it (USER 65532, no passwd entry: HOME is /).
RUN_AS_USER = 65532


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "privileged": False,  # said explicitly, so a server-side apply takes a hand-set true back
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_isolation() -> dict[str, Any]:
    """Pod fields a hand edit could use to escape isolation, set explicitly so that the
    operator owns them (server-side apply puts back only the fields its manager sets)."""
    return {"hostNetwork": False, "hostPID": False, "hostIPC": False, "serviceAccountName": "default",
            "automountServiceAccountToken": False}


def scratch_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """A writable /tmp (the root filesystem is read-only): the volume and its mount."""
    return {"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}, {"name": "tmp", "mountPath": "/tmp"}


def shared_memory_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """A memory-backed /dev/shm: Triton's python backend passes tensors through shared memory,
    and a container's default /dev/shm is 64 MiB."""
    return ({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
            {"name": "dshm", "mountPath": "/dev/shm"})
