"""Label selectors: Kubernetes LabelSelector semantics, plus Cilium's label sources and special keys.

Kubernetes (kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors):
matchLabels and matchExpressions are ANDed; operators In, NotIn (also true when the key is absent),
Exists, DoesNotExist; an empty selector ``{}`` selects everything.

Cilium (docs.cilium.io "Using Kubernetes Constructs in Policy"; pkg/policy/api/selector.go): keys may
carry a source prefix ``k8s:`` or ``any:`` (or none: any source); an endpoint's labels also include
``io.kubernetes.pod.namespace``, ``io.cilium.k8s.namespace.labels.<key>`` for each namespace label,
``io.cilium.k8s.policy.serviceaccount`` and ``io.cilium.k8s.policy.cluster``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

NAMESPACE_KEY = "io.kubernetes.pod.namespace"
NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."
SERVICE_ACCOUNT_KEY = "io.cilium.k8s.policy.serviceaccount"
CLUSTER_KEY = "io.cilium.k8s.policy.cluster"
CLUSTER_NAME = "default"  # Helm value cluster.name defaults to "default"
CILIUM_LABEL_PREFIX = "io.cilium.k8s"  # pkg/k8s/apis/cilium.io const.go LabelPrefix: labels only the agent sets
_SOURCES = ("k8s:", "any:")
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True)
class Requirement:
    """``key`` ``operator`` ``values``; operator "=" is a matchLabels entry."""
    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator in ("=", "In"):
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        return present if self.operator == "Exists" else not present

    def text(self) -> str:
        values = ",".join(sorted(self.values))
        return {"=": f"{self.key}={values}", "In": f"{self.key} in ({values})", "NotIn": f"{self.key} notin ({values})",
                "Exists": self.key, "DoesNotExist": f"!{self.key}"}[self.operator]


@dataclass(frozen=True)
class Selector:
    """A compiled LabelSelector: every requirement must hold."""
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def keys(self) -> set[str]:
        return {r.key for r in self.requirements}

    def without(self, key: str) -> "Selector":
        return Selector(tuple(r for r in self.requirements if r.key != key))

    def text(self) -> str:
        return ",".join(r.text() for r in self.requirements) or "{}"


def parse_selector(raw, *, cilium: bool = False) -> Selector:
    """Compile a LabelSelector mapping (``None`` = ``{}``). With ``cilium``, keys lose their
    ``k8s:``/``any:`` source prefix. Raises ValueError on a malformed selector."""
    if raw is None:
        return Selector(())
    if not isinstance(raw, dict):
        raise ValueError(f"selector {raw!r} is not a mapping")
    unknown = set(raw) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise ValueError(f"selector has unknown fields {sorted(unknown)}")
    key = _cilium_key if cilium else _k8s_key
    reqs = [Requirement(key(k), "=", frozenset({_text(v)})) for k, v in (raw.get("matchLabels") or {}).items()]
    for expr in raw.get("matchExpressions") or []:
        op, values = expr.get("operator"), expr.get("values") or []
        if op not in _OPERATORS or "key" not in expr:
            raise ValueError(f"matchExpressions entry {expr!r}: needs a key and an operator in {_OPERATORS}")
        if (op in ("In", "NotIn")) != bool(values):
            raise ValueError(f"matchExpressions entry {expr!r}: In/NotIn need values, Exists/DoesNotExist none")
        reqs.append(Requirement(key(expr["key"]), op, frozenset(_text(v) for v in values)))
    return Selector(tuple(reqs))


def _text(value) -> str:
    return "" if value is None else str(value)


def _k8s_key(key: str) -> str:
    return key


def _cilium_key(key: str) -> str:
    for prefix in _SOURCES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def unsupported_keys(selector: Selector) -> list[str]:
    """Keys this model cannot evaluate: other label sources (``reserved:``, ``container:`` ...)."""
    return sorted(k for k in selector.keys() if ":" in k)  # a Kubernetes label key has no ':'


def cilium_labels(labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str],
                  service_account: str) -> dict[str, str]:
    """The label set Cilium gives a pod's endpoint (source prefixes dropped). The pod's own labels under
    ``io.cilium.k8s`` are dropped first (pkg/k8s/utils/utils.go filterPodLabels, "without the labels
    owned by Cilium"), so a pod cannot pose as another namespace, service account or cluster."""
    out = {k: v for k, v in labels.items() if not k.startswith(CILIUM_LABEL_PREFIX)}
    out.update({NAMESPACE_LABELS_PREFIX + k: v for k, v in namespace_labels.items()})
    out[NAMESPACE_KEY] = namespace
    out[SERVICE_ACCOUNT_KEY] = service_account
    out[CLUSTER_KEY] = CLUSTER_NAME
    return out
