"""A deterministic synthetic cluster for the benchmark: namespaces, workloads with labels and ports,
and a mix of NetworkPolicies and CiliumNetworkPolicies (label and namespace selectors, ports,
L7 HTTP, entities, deny rules, default deny)."""
from __future__ import annotations

import random

TIERS = ("web", "api", "db", "cache")
PORTS = {"web": [("http", 8080, "TCP")], "api": [("http", 8080, "TCP"), ("grpc", 9090, "TCP")],
         "db": [("pg", 5432, "TCP")], "cache": [("redis", 6379, "TCP"), ("gossip", 7946, "UDP")]}


def objects(workloads: int = 200, policies: int = 40, namespaces: int = 8, seed: int = 51,
            replicas: int = 1) -> list[dict]:
    """``replicas`` > 1: the workloads are bare Pods as ``kubectl get pods -A -o yaml`` lists them,
    ``replicas`` pods per Deployment (``w<d>-<r>``, the Deployment's template labels)."""
    rng = random.Random(seed)
    names = [f"ns{i}" for i in range(namespaces)]
    out = [{"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": n, "labels": {"env": "prod" if i % 2 else "dev", "team": f"t{i % 3}"}}}
           for i, n in enumerate(names)]
    for i in range(-(-workloads // replicas)):
        tier = TIERS[i % len(TIERS)]
        labels = {"app": f"app{i % 25}", "tier": tier, "team": f"t{rng.randrange(3)}"}
        if replicas == 1:
            out.append(_deployment(f"w{i}", names[i % namespaces], labels, PORTS[tier]))
            continue
        for r in range(min(replicas, workloads - i * replicas)):
            out.append(_pod(f"w{i}-{r}", names[i % namespaces], labels, PORTS[tier]))
    for i in range(policies):
        out.append((_network_policy if i % 2 else _cilium_policy)(rng, i, rng.choice(names)))
    return out


def _deployment(name: str, ns: str, labels: dict, ports: list) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": labels["app"]}}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "busybox", "ports": [
                    {"name": n, "containerPort": p, "protocol": proto} for n, p, proto in ports]}]}}}}


def _pod(name: str, ns: str, labels: dict, ports: list) -> dict:
    template = _deployment(name, ns, labels, ports)["spec"]["template"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, **template["metadata"]},
            "spec": template["spec"]}


def _network_policy(rng: random.Random, i: int, ns: str) -> dict:
    peer = rng.choice([{"podSelector": {"matchLabels": {"tier": rng.choice(TIERS)}}},
                       {"namespaceSelector": {"matchLabels": {"env": "prod"}}},
                       {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In",
                                                                    "values": ["t0", "t1"]}]},
                        "podSelector": {"matchLabels": {"tier": "api"}}},
                       {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.96.0.0/12"]}}])
    spec = {"podSelector": {"matchLabels": {"tier": rng.choice(TIERS)}},
            "ingress": [{"from": [peer], "ports": [{"port": rng.choice(["http", 5432, 6379])}]}]}
    if i % 3 == 0:
        spec["egress"] = [{"to": [{"namespaceSelector": {}}], "ports": [{"port": 8000, "endPort": 9999}]}]
        spec["policyTypes"] = ["Ingress", "Egress"]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"np{i}", "namespace": ns}, "spec": spec}


def _cilium_policy(rng: random.Random, i: int, ns: str) -> dict:
    spec: dict = {"endpointSelector": {"matchLabels": {"app": f"app{rng.randrange(25)}"}},
                  "ingress": [{"fromEndpoints": [{"matchLabels": {"tier": "web"}},
                                                 {"matchLabels": {"k8s:io.kubernetes.pod.namespace": rng.choice(
                                                     ["ns1", "ns3"]), "tier": "api"}}],
                               "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}],
                                            "rules": {"http": [{"method": "GET", "path": "/api/.*"}]}}]}]}
    if i % 4 == 0:
        spec["egress"] = [{"toEntities": ["cluster"]}, {"toFQDNs": [{"matchPattern": "*.example.com"}]}]
        spec["egressDeny"] = [{"toEndpoints": [{"matchLabels": {"tier": "db"}}]}]
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": f"cnp{i}", "namespace": ns}, "spec": spec}
