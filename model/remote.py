"""Shell commands the stack runs on the hosts over SSH (pulumi-command), built in one place."""
from __future__ import annotations

import shlex

KUBECTL = "sudo kubectl --kubeconfig /root/.kube/config"
CILIUM_CRDS = ("ciliumnetworkpolicies.cilium.io", "ciliumclusterwidenetworkpolicies.cilium.io",
               "ciliumenvoyconfigs.cilium.io", "ciliumclusterwideenvoyconfigs.cilium.io")


def wait_for_crds(timeout_s: int = 300) -> str:
    """Cilium's operator registers its CRDs at start-up, after the Helm release is "ready" as far
    as Helm is concerned; Cilium CRs must wait until the CRDs are established. Polls until the CRDs
    exist (``kubectl wait`` fails at once on a CRD that does not exist yet), then waits for them."""
    crds = " ".join(f"crd/{c}" for c in CILIUM_CRDS)
    return (f"for _ in $(seq 1 {timeout_s // 5}); do {KUBECTL} get {crds} >/dev/null 2>&1 && break; "
            f"sleep 5; done; {KUBECTL} wait --for=condition=established --timeout={timeout_s}s {crds}")


def quote(s: str) -> str:
    return shlex.quote(s)
