"""Core Kubernetes objects of the lab: the test namespaces and their long-running curl pods."""
from __future__ import annotations

from .cilium import ALLOW_NAMESPACE, DENY_NAMESPACE

CURL_IMAGE = "curlimages/curl:8.16.0"  # pinned; never :latest
CURL_POD = "curl"
LAB_LABEL = {"app.kubernetes.io/part-of": "cilium-egress-lab"}


# Pod Security admission (built into Kubernetes since 1.25): every namespace the lab creates enforces
# the baseline profile, so no pod there runs with hostNetwork/hostPID/hostIPC, privileged, host ports,
# hostPath volumes or added capabilities beyond baseline's set - a hostNetwork pod would share the
# node's network namespace, where no Cilium endpoint policy applies (README "Security controls").
# The version is pinned to the cluster's (kind v0.30.0's node image is Kubernetes v1.34), so a later
# profile change never rejects a pod unannounced.
POD_SECURITY_LEVEL = "baseline"
POD_SECURITY_VERSION = "v1.34"
POD_SECURITY_LABELS = {"pod-security.kubernetes.io/enforce": POD_SECURITY_LEVEL,
                       "pod-security.kubernetes.io/enforce-version": POD_SECURITY_VERSION}


def namespace_labels(extra: dict | None = None) -> dict:
    """A lab namespace's labels: the lab's own, Pod Security ``baseline`` enforcement, then ``extra``
    (a pack's selector labels; they cannot override the enforcement)."""
    return {**LAB_LABEL, **(extra or {}), **POD_SECURITY_LABELS}


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": namespace_labels()}}


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
