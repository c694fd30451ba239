"""Core Kubernetes objects of the lab: the test namespaces and their long-running curl pods."""
from __future__ import annotations

from .cilium import ALLOW_NAMESPACE, DENY_NAMESPACE

CURL_IMAGE = "curlimages/curl:8.16.0"  # pinned; never :latest
CURL_POD = "curl"
LAB_LABEL = {"app.kubernetes.io/part-of": "cilium-egress-lab"}


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": dict(LAB_LABEL)}}


def curl_pod(ns: str) -> dict:
    """A pod that sleeps forever so probes can ``kubectl exec`` curl in it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": CURL_POD, "namespace": ns, "labels": {**LAB_LABEL, "app": CURL_POD}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 100, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": CURL_POD,
                "image": CURL_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "infinity"],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                              "limits": {"cpu": "200m", "memory": "64Mi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }


TEST_NAMESPACES = (ALLOW_NAMESPACE, DENY_NAMESPACE)


def test_workloads() -> list[dict]:
    """Namespaces first, then the pods in them."""
    return [namespace(ns) for ns in TEST_NAMESPACES] + [curl_pod(ns) for ns in TEST_NAMESPACES]
