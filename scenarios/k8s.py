"""Kubernetes objects the packs build: namespaces, the egress scenario's test namespaces and their
long-running curl pods, and small builders the seed packs share (Deployments/StatefulSets, Services,
the curl sidecar).

Pure data. Pod template labels are exactly what a pack passes (the policies select on them); the
lab's own label goes on object metadata only, never on pods or into selectors.
"""
from __future__ import annotations

import copy

from .base import PROBE_CONTAINER_ANNOTATION
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


CURL_CONTAINER = "curl"
# The packs' HTTP stand-in: hashicorp/http-echo 1.0.0, distroless static nonroot (uid 65532); ``-listen``
# and ``-text`` flags, a ``/`` handler for every path plus ``/health`` (hashicorp/http-echo main.go at
# v1.0.0).
ECHO_IMAGE = "hashicorp/http-echo:1.0.0"
ECHO_UID = 65532


def resources(cpu: str, memory: str, memory_limit: str) -> dict:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


def non_root(uid: int) -> dict:
    """Container securityContext for images that run as an unprivileged user."""
    return {"runAsNonRoot": True, "runAsUser": uid, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def curl_sidecar() -> dict:
    """sh + curl for probes, in the pod's network namespace (so it has the pod's identity).
    curlimages/curl runs as curl_user (uid 100)."""
    return {
        "name": CURL_CONTAINER,
        "image": CURL_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sleep", "infinity"],
        "resources": resources("10m", "16Mi", "64Mi"),
        "securityContext": non_root(100),
    }


def namespace(name: str, labels: dict | None = None) -> dict:
    """A pack's namespace: its selector ``labels``, the lab's, and Pod Security baseline."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": namespace_labels(labels)}}


def service_account(ns: str, name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": ns, "labels": dict(LAB_LABEL)}}


def service(ns: str, name: str, selector: dict, ports: list[dict], labels: dict | None = None,
            svc_type: str = "ClusterIP") -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": {**LAB_LABEL, **(labels or {})}},
            "spec": {"type": svc_type, "selector": dict(selector), "ports": copy.deepcopy(ports)}}


def workload(kind: str, ns: str, name: str, pod_labels: dict, containers: list[dict], *,
             labels: dict | None = None, probe_container: str | None = None,
             service_account_name: str | None = None, service_name: str | None = None,
             pod_security: dict | None = None, selector: dict | None = None) -> dict:
    """A Deployment or StatefulSet with one replica. ``probe_container`` names the container the
    probes exec into (the PROBE_CONTAINER_ANNOTATION on the workload's metadata)."""
    meta: dict = {"name": name, "namespace": ns, "labels": {**LAB_LABEL, **(labels or {})}}
    if probe_container:
        meta["annotations"] = {PROBE_CONTAINER_ANNOTATION: probe_container}
    pod_spec: dict = {"terminationGracePeriodSeconds": 2,
                      "securityContext": {"seccompProfile": {"type": "RuntimeDefault"},
                                          **(pod_security or {})},
                      "containers": copy.deepcopy(containers)}
    if service_account_name:
        pod_spec["serviceAccountName"] = service_account_name
    spec: dict = {"replicas": 1,
                  "selector": {"matchLabels": dict(selector or pod_labels)},
                  "template": {"metadata": {"labels": dict(pod_labels)}, "spec": pod_spec}}
    if kind == "StatefulSet":
        spec["serviceName"] = service_name or name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}


def deployment(ns: str, name: str, pod_labels: dict, containers: list[dict], **kw) -> dict:
    return workload("Deployment", ns, name, pod_labels, containers, **kw)
