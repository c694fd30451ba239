"""Cluster: Kubernetes objects -> namespaces, workloads, services, policies, Envoy listeners, IPs.

Built-ins always present so that lookups by service name have a DNS server: namespaces ``default`` and
``kube-system``, workload ``kube-system/coredns`` and Service ``kube-system/kube-dns`` (10.96.0.10).
A user object of the same kind and name replaces a built-in. Every namespace carries
``kubernetes.io/metadata.name: <name>`` (set by the control plane; kubernetes.io "Namespaces").
"""
from __future__ import annotations

import ipaddress
import pathlib
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import yaml

from . import resolve, strict
from .cnp import parse_cilium_policy
from .envoy import LISTENER_TYPE
from .netpol import parse_network_policy
from .rules import Policy
from .workload import Workload

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob",
                  "Pod")
ENVOY_KINDS = ("CiliumEnvoyConfig", "CiliumClusterwideEnvoyConfig")
CIDR_GROUP = "CiliumCIDRGroup"
CLUSTER_SCOPED = ("Namespace", "CiliumClusterwideNetworkPolicy", "CiliumClusterwideEnvoyConfig", CIDR_GROUP,
                  "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Node", "PersistentVolume",
                  "StorageClass", "PriorityClass", "IngressClass", "GatewayClass", "ValidatingWebhookConfiguration",
                  "MutatingWebhookConfiguration", "APIService", "CiliumNode", "CiliumIdentity")
POLICY_KINDS = ("NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")
USED_KINDS = WORKLOAD_KINDS + ENVOY_KINDS + POLICY_KINDS + ("Namespace", "Service", CIDR_GROUP)
NAME_LABEL = "kubernetes.io/metadata.name"
PROTOCOLS = ("TCP", "UDP", "SCTP")
POD_NETWORK = ipaddress.IPv4Address("10.244.1.0")    # user workloads: 10.244.1.1, .2, ... (10.244.0.0/16)
SERVICE_NETWORK = ipaddress.IPv4Address("10.96.1.0")  # user services: 10.96.1.1, ... (10.96.0.0/12)
DNS_NAMESPACE, DNS_SERVICE = "kube-system", "kube-dns"
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's safe loader: ~10x faster, same objects


class PolicyInputError(ValueError):
    """Bad input; the message names the file (when known) and the object ``Kind ns/name``."""


@dataclass(frozen=True)
class ServicePort:
    name: str | None
    port: int
    target_port: int | str
    protocol: str


@dataclass(frozen=True, eq=False)
class Service:
    name: str
    namespace: str
    selector: Mapping[str, str]
    ports: tuple[ServicePort, ...]
    cluster_ip: str | None
    builtin: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def selects(self, w: Workload) -> bool:
        """A Service without selector has no pod backends (kubernetes.io "Services without selectors")."""
        return (w.namespace == self.namespace and bool(self.selector)
                and all(w.labels.get(k) == v for k, v in self.selector.items()))


def _ref(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    kind, name = obj.get("kind", "?"), meta.get("name", "?")
    if kind in CLUSTER_SCOPED:
        return f"{kind} {name}"
    return f"{kind} {meta.get('namespace') or 'default'}/{name}"


@dataclass
class Cluster:
    namespaces: dict[str, dict[str, str]]
    workloads: dict[str, Workload]
    services: dict[str, Service]
    policies: list[Policy]
    listeners: dict[tuple[str, str, str], frozenset[str]]
    warnings: list[str] = field(default_factory=list)
    _index: dict = field(default_factory=dict, repr=False)
    _memo: dict = field(default_factory=dict, repr=False)  # other per-cluster memos (verdict.py)

    @classmethod
    def from_objects(cls, objects: Iterable[dict], source: str | None = None,
                     origins: Mapping[int, str] | None = None, strict_namespaces: bool = False) -> "Cluster":
        """Build a cluster from plain object dicts. Errors name the object (and its file: ``source``
        for all objects, or ``origins[index]`` per object as returned by ``load_paths``). A namespace
        an object lives in but no Namespace object declares is inferred with only its
        ``kubernetes.io/metadata.name`` label and a warning; ``strict_namespaces`` makes it an error."""
        return _Builder(list(objects), source, origins or {}, strict_namespaces).build()

    def workload(self, ref: str) -> Workload:
        """``ns/name``, or ``name`` when exactly one namespace has it."""
        if ref in self.workloads:
            return self.workloads[ref]
        found = [w for w in self.workloads.values() if "/" not in ref and w.name == ref]
        if len(found) == 1:
            return found[0]
        hint = f"; candidates: {', '.join(w.key for w in found)}" if found else ""
        raise PolicyInputError(f"unknown workload {ref!r}{hint}")

    def selecting(self, w: Workload, direction: str) -> list[Policy]:
        """Policies that select ``w`` and say something about ``direction`` (memoised per workload key,
        so a class's stand-in workload (classes.py) is looked up like any other)."""
        hit = self._index.get((w.key, direction))
        if hit is None:
            # a hostNetwork pod is no endpoint: no (non-host) policy selects it
            hit = self._index[w.key, direction] = [] if w.host_network else [
                p for p in self.policies if _speaks(p, direction) and p.subject.matches(w)]
        return hit

    def dns_server(self) -> tuple[Workload, int] | None:
        """The kube-dns backend and its target port for 53/UDP (None: no DNS server)."""
        svc = self.services.get(f"{DNS_NAMESPACE}/{DNS_SERVICE}")
        sp = svc and next((p for p in svc.ports if p.port == 53 and p.protocol == "UDP"), None)
        backend = sp and next((w for w in self.workloads.values() if svc.selects(w)), None)
        if backend is None:
            return None
        return backend, target_port(sp, backend)

    def service_port(self, w: Workload, port: int, protocol: str, name: str | None) -> tuple[Service, ServicePort]:
        """The Service (named, or the only one) selecting ``w`` that exposes ``port``/``protocol``."""
        found = [(s, sp) for s in self.services.values() if s.namespace == w.namespace
                 and (name is None or s.name == name) and s.selects(w)
                 for sp in s.ports if sp.port == port and sp.protocol == protocol]
        if len(found) != 1:
            what = f"Service {w.namespace}/{name}" if name else "Service"
            count = "no" if not found else f"{len(found)} ({', '.join(s.key for s, _ in found)})"
            raise PolicyInputError(f"{count} {what} selecting {w.key} exposes {port}/{protocol}")
        return found[0]


def _speaks(policy: Policy, direction: str) -> bool:
    d = policy.direction(direction)
    return d.isolates or bool(d.allows) or bool(d.denies)


def target_port(sp: ServicePort, backend: Workload) -> int:
    """The endpoint port behind a Service port: targetPort as a number, or the backend's container
    port of that name and protocol (kubernetes.io "Service": targetPort may name a port)."""
    if isinstance(sp.target_port, int):
        return sp.target_port
    for name, number, proto in backend.ports:
        if name == sp.target_port and proto == sp.protocol:
            return number
    raise PolicyInputError(f"targetPort {sp.target_port!r} of port {sp.port}/{sp.protocol} is no container port "
                           f"of {backend.key}")


def _builtins(ns_labels: dict[str, str]) -> tuple[dict, dict]:
    coredns = Workload("coredns", DNS_NAMESPACE, "Deployment", {"k8s-app": "kube-dns"},
                       (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")),
                       "10.244.0.2", ns_labels, "coredns", builtin=True)
    kube_dns = Service(DNS_SERVICE, DNS_NAMESPACE, {"k8s-app": "kube-dns"},
                       (ServicePort("dns", 53, 53, "UDP"), ServicePort("dns-tcp", 53, 53, "TCP"),
                        ServicePort("metrics", 9153, 9153, "TCP")), "10.96.0.10", builtin=True)
    return {coredns.key: coredns}, {kube_dns.key: kube_dns}


class _Builder:
    """One pass over the objects; every error names the object and, when known, its file."""

    def __init__(self, objects: list[dict], source: str | None, origins: Mapping[int, str],
                 strict_namespaces: bool = False):
        self.objects, self.source, self.origins = objects, source, origins
        self.strict_namespaces = strict_namespaces
        self.warnings: list[str] = []

    def build(self) -> Cluster:
        namespaces = {"default": {NAME_LABEL: "default"}, DNS_NAMESPACE: {NAME_LABEL: DNS_NAMESPACE}}
        for i, obj in self._each("Namespace"):
            namespaces[obj["metadata"]["name"]] = {**_labels(obj["metadata"]), NAME_LABEL: obj["metadata"]["name"]}
        for i, obj in self._each():
            ns = obj["metadata"].get("namespace") or "default"
            if obj["kind"] in CLUSTER_SCOPED or ns in namespaces:
                continue
            if self.strict_namespaces:
                raise self._error(i, obj, f"namespace {ns} is not declared; add a Namespace object "
                                          "(--strict-namespaces)")
            namespaces[ns] = {NAME_LABEL: ns}
            self.warnings.append(f"namespace {ns} is not declared (first used by {_ref(obj)}): inferred with only "
                                 f"the label {NAME_LABEL}={ns}")
        self.namespaces = namespaces
        workloads, services = _builtins(namespaces[DNS_NAMESPACE])
        listeners, policies, user_workloads, user_services, groups = {}, [], [], [], {}
        for i, obj in self._each():
            kind = obj["kind"]
            if kind not in USED_KINDS:
                self.warnings.append(f"{_ref(obj)}: kind not evaluated (no effect on connectivity)")
                continue
            if kind == "Namespace":
                continue
            if kind == CIDR_GROUP:
                groups[obj["metadata"]["name"]] = self._guard(i, obj, lambda: resolve.cidr_group(obj))
                continue
            if kind in WORKLOAD_KINDS or kind in POLICY_KINDS:
                self._guard(i, obj, lambda: strict.validate(obj))
            ns = self._namespace(i, obj)
            if kind in WORKLOAD_KINDS:
                user_workloads.append((i, obj, ns))
            elif kind == "Service":
                user_services.append((i, obj, ns))
            elif kind in ENVOY_KINDS:
                names = frozenset(r.get("name") for r in (obj.get("spec") or {}).get("resources") or []
                                  if r.get("@type") == LISTENER_TYPE)
                listeners[kind, ns or "", obj["metadata"]["name"]] = names
            else:
                policies += self._policies(i, obj, ns)
        for n, (i, obj, ns) in enumerate(user_workloads):
            w = self._guard(i, obj, lambda: _workload(obj, ns, namespaces[ns], str(POD_NETWORK + 1 + n)))
            if w.key in workloads and not workloads[w.key].builtin:
                raise self._error(i, obj, f"a workload named {w.key} is already declared")
            workloads[w.key] = w
        for n, (i, obj, ns) in enumerate(user_services):
            s = self._guard(i, obj, lambda: _service(obj, ns, str(SERVICE_NETWORK + 1 + n)))
            services[s.key] = s
        self.warnings += resolve.resolve_cidr_groups(policies, groups)
        self.warnings += resolve.skip_conflicting_named_ports(policies, workloads.values())
        ordered = dict(sorted(workloads.items(), key=lambda kv: (kv[1].namespace, kv[1].name)))
        return Cluster(namespaces, ordered, services, policies, listeners, self.warnings)

    def _each(self, only: str | None = None):
        for i, obj in enumerate(self.objects):
            if not isinstance(obj, dict) or not obj.get("kind") or not (obj.get("metadata") or {}).get("name"):
                raise self._error(i, obj if isinstance(obj, dict) else {}, "every object needs kind and metadata.name")
            if only is None or obj["kind"] == only:
                yield i, obj

    def _namespace(self, i: int, obj: dict) -> str | None:
        if obj["kind"] in CLUSTER_SCOPED:
            return None
        ns = obj["metadata"].get("namespace") or "default"
        if ns not in self.namespaces:
            raise self._error(i, obj, f"namespace {ns} is not declared; add a Namespace object")
        return ns

    def _policies(self, i: int, obj: dict, ns: str | None) -> list[Policy]:
        ref = _ref(obj)
        if obj["kind"] == "NetworkPolicy":
            policy, warnings = self._guard(i, obj, lambda: parse_network_policy(obj, ref, ns))
            policies = [policy]
        else:
            policies, warnings = self._guard(i, obj, lambda: parse_cilium_policy(obj, ref, ns))
        self.warnings += warnings
        return policies

    def _guard(self, i: int, obj: dict, build):
        try:
            return build()
        except PolicyInputError:
            raise
        except KeyError as exc:
            raise self._error(i, obj, f"missing field {exc}") from exc
        except (ValueError, TypeError, AttributeError) as exc:
            raise self._error(i, obj, str(exc)) from exc

    def _error(self, i: int, obj: dict, message: str) -> PolicyInputError:
        where = self.origins.get(i) or self.source
        return PolicyInputError(f"{where + ': ' if where else ''}{_ref(obj)}: {message}")


def _labels(meta: dict) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in (meta.get("labels") or {}).items()}


def _workload(obj: dict, ns: str, ns_labels: dict, ip: str) -> Workload:
    if obj["kind"] == "Pod":
        meta, pod = obj["metadata"], obj.get("spec") or {}
    else:
        spec = obj.get("spec") or {}
        if obj["kind"] == "CronJob":  # CronJob -> jobTemplate (a Job spec) -> pod template
            spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        template = spec.get("template") or {}
        meta, pod = template.get("metadata") or {}, template.get("spec") or {}
    ports = []
    for c in pod.get("containers") or []:
        for p in c.get("ports") or []:
            protocol = p.get("protocol") or "TCP"
            if not isinstance(p.get("containerPort"), int) or protocol not in PROTOCOLS:
                raise ValueError(f"container {c.get('name')}: port {p} needs an integer containerPort and a "
                                 f"protocol in {PROTOCOLS}")
            ports.append((p.get("name"), p["containerPort"], protocol))
    account = pod.get("serviceAccountName") or pod.get("serviceAccount") or "default"
    return Workload(obj["metadata"]["name"], ns, obj["kind"], _labels(meta), tuple(ports), ip, ns_labels, account,
                    host_network=pod.get("hostNetwork") is True)


def _service(obj: dict, ns: str, ip: str) -> Service:
    spec = obj.get("spec") or {}
    ports = []
    for p in spec.get("ports") or []:
        target = p.get("targetPort", p["port"])
        if isinstance(target, str) and target.isdigit():
            target = int(target)
        ports.append(ServicePort(p.get("name"), int(p["port"]), target, p.get("protocol") or "TCP"))
    cluster_ip = spec.get("clusterIP") or ip
    return Service(obj["metadata"]["name"], ns, {str(k): str(v) for k, v in (spec.get("selector") or {}).items()},
                   tuple(ports), None if cluster_ip == "None" else cluster_ip)


def load_paths(paths: Sequence[str]) -> tuple[list[dict], dict[int, str]]:
    """Objects from files and directories (``*.yaml``, ``*.yml``, ``*.json``, recursively, sorted),
    multi-document, ``kind: List`` expanded; and each object's file by index (for error messages).
    Raises PolicyInputError naming the file (and line, for syntax errors)."""
    objects: list[dict] = []
    origins: dict[int, str] = {}
    for path in _files(paths):
        for obj in _documents(path):
            origins[len(objects)] = str(path)
            objects.append(obj)
    return objects, origins


def _files(paths: Sequence[str]) -> list[pathlib.Path]:
    out = []
    for raw in paths:
        path = pathlib.Path(raw)
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json"))
        elif path.is_file():
            out.append(path)
        else:
            raise PolicyInputError(f"{raw}: no such file or directory")
    return out


def _documents(path: pathlib.Path) -> list[dict]:
    try:
        docs = [d for d in yaml.load_all(path.read_text(), Loader=_SAFE_LOADER) if d is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise PolicyInputError(f"{path}{line}: YAML syntax error: {exc.problem or exc}") from exc
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise PolicyInputError(f"{path}: cannot read: {exc}") from exc
    return [obj for n, doc in enumerate(docs, 1) for obj in _expand(path, n, doc)]


def _expand(path: pathlib.Path, n: int, doc) -> list[dict]:
    if not isinstance(doc, dict):
        raise PolicyInputError(f"{path}: document {n} is not a Kubernetes object (a mapping)")
    if doc.get("kind") == "List" or (doc.get("kind", "").endswith("List") and "items" in doc):
        return [obj for item in doc.get("items") or [] for obj in _expand(path, n, item)]
    return [doc]
