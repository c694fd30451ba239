"""Run the Pulumi program under mocks and record what it declares.

``run_program(config)`` sets fresh mocks and config, runs ``stacks.program.main`` exactly as
``__main__.py`` does (settings from ``pulumi.Config``), waits for every registration and returns a
``Program``: each resource's type, name, inputs, parent, dependencies and provider, plus the
resolved stack outputs with their secretness. No network, no CLI, no engine.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from model.settings import PROJECT

KIND_IP = "203.0.113.10"
PROXY_IP = "203.0.113.20"
LOCAL_NODE_IP = "172.18.0.2"     # kind's node on kind's network (local platform)
LOCAL_PROXY_IP = "172.18.0.3"    # the proxy container there
# a ClusterMesh pack on local (stacks/local_mesh.py): each mesh cluster's kind node on kind's network
LOCAL_MESH_NODE_IPS = {"ccp": "172.18.0.4", "aws": "172.18.0.5"}
OPERATOR_IP = "198.51.100.7"
FAKE_KUBECONFIG = "apiVersion: v1\nkind: Config\nusers: [{name: admin, user: {client-key-data: c2VjcmV0}}]\n"
ROOT_DIR = __import__("pathlib").Path(__file__).resolve().parents[2]
SECRET_MARKER = "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n"


@dataclass
class Res:
    type: str
    name: str
    inputs: dict
    urn: str
    parent: str
    deps: list[str]
    provider: str
    custom: bool
    secret_inputs: set[str] = field(default_factory=set)  # top-level inputs that arrived as secrets
    ignore_changes: list[str] = field(default_factory=list)


@dataclass
class Program:
    resources: list[Res]
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    error: BaseException | None = None

    def of_type(self, typ: str) -> list[Res]:
        return [r for r in self.resources if r.type == typ]

    def named(self, name: str) -> Res:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name!r}, found {len(found)}"
        return found[0]

    def by_urn(self, urn: str) -> Res:
        return next(r for r in self.resources if r.urn == urn)


def _ints(v: Any) -> Any:
    """The wire format's numbers are doubles: 80.0 -> 80, recursively."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        return {k: _ints(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_ints(x) for x in v]
    return v


def _digest(inputs: dict) -> str:
    import hashlib
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


DEFAULT_AMI = "ami-0123456789abcdef0"  # what getAmi (most recent Canonical image) answers
INTERNET_IP = "93.184.215.14"  # what every public name "resolves" to in the mock world


def edge_of(name: str) -> str | None:
    """The edge cluster (``e01`` ...) a fleet resource belongs to (stacks/fleet.py names), else None."""
    import re
    m = re.search(r"-(e\d\d)(?:-|$)", name)
    return m.group(1) if m else None


def edge_ip(name: str) -> str | None:
    """A fleet's kind hosts get 203.0.113.11, .12, ... (the one-cluster kind host: KIND_IP)."""
    edge = edge_of(name)
    return f"203.0.113.{10 + int(edge[1:])}" if edge else None


class LabMocks(Mocks):
    """Answers for resources and invokes, and a tiny simulated world for the probes: a probe's
    result is derived from what the program declared *before* it (the kind host's egress rules,
    the CiliumNetworkPolicy), never from the expected matrix. ``world`` overrides cells."""

    def __init__(self, world: dict[str, tuple[str, int | None]] | None = None, ami: str = DEFAULT_AMI):
        super().__init__()
        self.world = world or {}
        self.ami = ami
        self.declared: list[tuple[str, str, dict]] = []
        self.states: dict[str, dict] = {}

    def _egress_allows(self, dest: str, port: int, edge: str | None = None) -> bool:
        """The kind host's declared egress rules (the security group) for a direct connection
        (``edge``: that edge cluster's host, in a fleet); no security group at all (local, existing):
        the machine's own network lets it out."""
        from model.security_groups import Rule, allows
        if not any(t.startswith("aws:") for t, _, _ in self.declared):
            return True
        rules = [Rule(n, i["ipProtocol"], i["cidrIpv4"], i.get("fromPort"), i.get("toPort"))
                 for t, n, i in self.declared
                 if t == "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule" and n.startswith("kind-")
                 and (edge is None or f"-{edge}-" in n)]
        return allows(rules, "tcp", dest, port)

    @property
    def proxy_ip(self) -> str:
        return LOCAL_PROXY_IP if any(t == "command:local:Command" for t, _, _ in self.declared) else PROXY_IP

    def _k8s_objects(self, edge: str | None = None) -> list[dict]:
        """What the program applied to the cluster (``edge``: that edge cluster's, in a fleet), as
        Kubernetes objects (from the declared inputs)."""
        out = []
        for t, n, i in self.declared:
            if not t.startswith("kubernetes:") or t.startswith("kubernetes:helm") or "providers" in t:
                continue
            if edge is not None and f"-{edge}-" not in n:
                continue
            group_version, kind = t.split(":")[1], t.split(":")[2]
            api = group_version.replace("core/", "")
            out.append({"apiVersion": i.get("apiVersion", api), "kind": i.get("kind", kind),
                        **{k: _ints(v) for k, v in i.items() if k not in ("apiVersion", "kind")}})
        return out

    def _k8s_named(self) -> list[tuple[dict, str]]:
        """Every applied object with its resource name (_k8s_objects' objects, in order)."""
        names = [n for t, n, i in self.declared if t.startswith("kubernetes:")
                 and not t.startswith("kubernetes:helm") and "providers" not in t]
        return list(zip(self._k8s_objects(), names))

    def _has(self, typ: str, name_part: str) -> dict | None:
        return next((i for t, n, i in self.declared if t == typ and name_part in n), None)

    def _mtls_echo(self) -> tuple[str, int, str]:
        """Through Envoy's mTLS listener: the echo answers only if the backend is installed and both
        secrets exist; the CN is the declared client CSR's subject."""
        backend = self._has("command:remote:Command", "mtls-backend-demo-install") or \
            self._has("command:local:Command", "mtls-backend-demo-install")
        secrets = [self._has("kubernetes:core/v1:Secret", s) for s in ("tls-client-cert", "mtls-ca")]
        if not backend or not all(secrets):
            return ("000", 28, "")
        cn = self._has("tls:index/certRequest:CertRequest", "client-csr")["subject"]["commonName"]
        echo = {"method": "GET", "path": "/", "headers": {"x-ssl-client-cn": cn, "x-ssl-client-verify": "0"}}
        return ("200", 0, json.dumps(echo))

    def _simulate(self, traffic, edge: str | None = None) -> tuple[str, int, str]:
        """Cilium = the evaluator on the *declared* objects; AWS = the declared egress rules; the
        egress proxy and the mTLS backend as the lab builds them."""
        from cilium_verdicts import Cluster, evaluate
        if "@" in traffic.source:  # ClusterMesh: each cluster's declared objects (resource names carry it)
            from cilium_verdicts.mesh import Mesh
            v = Mesh.from_objects({c: [o for o, n in self._k8s_named() if f"-{c}-" in n]
                                   for c in LOCAL_MESH_NODE_IPS}).evaluate(traffic)[1]
        else:
            v = evaluate(Cluster.from_objects(self._k8s_objects(edge)), traffic)
        if v.verdict != "allow":
            return {"drop": ("000", 28, ""), "dns-fail": ("000", 6, ""), "l7-deny": ("403", 0, "")}[v.verdict]
        host = traffic.to.split(":", 1)[1] if traffic.to.startswith("world:") else None
        if v.listener and "ClusterwideEnvoyConfig" in v.listener:
            return self._mtls_echo()
        if v.listener:  # the egress CEC: Envoy -> the proxy (allowed through the security group) -> out
            return ("200", 0, "") if self._egress_allows(self.proxy_ip, 3128, edge) else ("000", 28, "")
        if host == self.proxy_ip:  # the mTLS backend, directly: it refuses anything without a client certificate
            backend = self._has("command:remote:Command", "mtls-backend-demo-install") or \
                self._has("command:local:Command", "mtls-backend-demo-install")
            return ("000", 56, "") if backend and self._egress_allows(host, traffic.port) else ("000", 28, "")
        if host is not None:
            return ("200", 0, "") if self._egress_allows(INTERNET_IP, traffic.port, edge) else ("000", 28, "")
        return ("200" if traffic.request else "000", 0, "")

    def _probe(self, command: str, edge: str | None = None) -> str:
        import shlex

        from cilium_verdicts import Probe
        argv = shlex.split(command)
        label = json.loads(argv[argv.index("python3") + 3])  # python3 -c LOOP LABEL EXPECT ...
        code, rc, body = self._simulate(Probe(**label["traffic"]), edge)
        code, rc = self.world.get(label["probe"], (code, rc))
        # a CDN answers from an address other than the one the proxy host would resolve
        remote_ip = self.world.get("cdn", INTERNET_IP) if rc == 0 else ""
        return json.dumps({**label, "http_code": code, "curl_exit": rc, "body": body, "remote_ip": remote_ip})

    def new_resource(self, args: MockResourceArgs):
        self.declared.append((args.typ, args.name, args.inputs))
        state = dict(args.inputs)
        if args.typ.startswith(("aws:iam/", "aws:cloudwatch/")):
            state.setdefault("arn", f"arn:mock:{args.name}")
            state.setdefault("name", args.name)  # the provider auto-names from the resource name
        if args.typ == "aws:ec2/eip:Eip":
            state["publicIp"] = (edge_ip(args.name) or KIND_IP) if "kind" in args.name else PROXY_IP
            state["allocationId"] = f"eipalloc-{args.name}"
        elif args.typ == "tls:index/privateKey:PrivateKey":
            state["privateKeyOpenssh"] = (SECRET_MARKER if args.name.startswith("ssh-") else
                                          f"-----BEGIN OPENSSH PRIVATE KEY-----\n{args.name}\n")
            state["privateKeyPem"] = f"-----BEGIN PRIVATE KEY-----\n{args.name}\n-----END PRIVATE KEY-----"
            state["publicKeyOpenssh"] = f"ssh-ed25519 AAAA{args.name}"
        elif args.typ in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
            # like pulumi-tls: a certificate (and a CSR) is new whenever any of its inputs changes
            state["certPem"] = f"-----BEGIN CERTIFICATE-----\n{args.name}\n{_digest(args.inputs)}\n-----END CERTIFICATE-----"
        elif args.typ == "tls:index/certRequest:CertRequest":
            state["certRequestPem"] = (f"-----BEGIN CERTIFICATE REQUEST-----\n{args.name}\n{_digest(args.inputs)}\n"
                                       "-----END CERTIFICATE REQUEST-----")
        elif args.typ == "aws:ec2/keyPair:KeyPair":
            state["keyName"] = args.name
        elif args.typ in ("command:remote:Command", "command:local:Command"):
            if args.name.endswith("-node-address"):
                mesh = [c for c in LOCAL_MESH_NODE_IPS if args.name.startswith(f"kind-{c}-")]
                state["stdout"] = (LOCAL_MESH_NODE_IPS[mesh[0]] if mesh else LOCAL_NODE_IP) + "\n"
            elif args.name.endswith("-address"):
                state["stdout"] = LOCAL_PROXY_IP + "\n"
            elif args.name.endswith("-kubeconfig"):
                state["stdout"] = FAKE_KUBECONFIG
            elif args.name.endswith("-proxy-log"):
                import shlex
                argv = shlex.split(args.inputs["create"])  # python3 -c SCRIPT CLIENT TARGETS ...
                targets = json.loads(argv[4])
                # squid logs what Envoy CONNECTed to: TLS by its SNI name, plain HTTP (port 80) by the
                # original address (scenarios.cilium.sni_tunnel_listener)
                seen = self.world.get("proxy", None)
                plain = bool(targets) and targets[0].endswith(":80")
                connects = seen if seen is not None else (targets[-1:] if plain else targets[:1])
                state["stdout"] = json.dumps({"targets": targets, "connects": connects, "attempts": 1})
            elif args.name.startswith("probes-"):
                state["stdout"] = self._probe(args.inputs["create"], edge_of(args.name))
            else:
                state["stdout"] = ""
        self.states[args.name] = state
        return f"{args.name}-id", state

    def call(self, args):
        if args.token == "aws:ec2/getAmi:getAmi":
            return {"id": self.ami, "architecture": "x86_64"}
        return {}


class RecordingMonitor(MockMonitor):
    """MockMonitor that also keeps what MockResourceArgs drops: parent and dependencies."""

    def __init__(self, mocks: Mocks):
        super().__init__(mocks)
        self.records: list[Res] = []

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = rpc.deserialize_properties(request.object, keep_unknowns=True)
            self.records.append(Res(
                type=request.type, name=request.name,
                inputs={k: _unwrap(v) for k, v in raw.items()}, urn=response.urn,
                parent=request.parent, deps=list(request.dependencies),
                provider=request.provider, custom=bool(request.custom),
                secret_inputs={k for k, v in raw.items() if _is_secret(v)},
                ignore_changes=list(request.ignoreChanges)))
        return response


def _is_secret(v: Any) -> bool:
    return isinstance(v, dict) and v.get(rpc._special_sig_key) == rpc._special_secret_sig


def _unwrap(v: Any) -> Any:
    """Strip the wire format's secret wrappers, recursively."""
    if _is_secret(v):
        return _unwrap(v["value"])
    if isinstance(v, dict):
        return {k: _unwrap(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_unwrap(x) for x in v]
    return v


REGION = "eu-central-1"  # aws:region, as Pulumi.dev.yaml sets it


def run_program(config: dict[str, Any] | None = None, *, public_ip: str = OPERATOR_IP,
                world: dict | None = None, ami: str = DEFAULT_AMI, region: str | None = REGION,
                tools: Any = None) -> Program:
    """Run the program with ``config`` (key -> value; lists/dicts JSON-encoded like the CLI does) and
    ``aws:region`` (None: unset); ``tools``: stacks.program.Tools for the platforms' preflight
    (which/run fakes)."""
    from stacks import program as composition
    from stacks.config import read_settings

    mocks = LabMocks(world, ami)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="dev", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config({
        **({"aws:region": region} if region else {}),
        **{f"{PROJECT}:{k}": (json.dumps(v) if isinstance(v, (list, dict, bool)) else str(v))
           for k, v in (config or {}).items()}})
    exported: dict[str, Any] = {}
    program = Program(resources=monitor.records)

    def body():
        composition.main(lambda: read_settings(public_ip_lookup=lambda: public_ip), exported.__setitem__, tools)

    try:
        _sync_await(run_pulumi_func(body))
    except Exception as exc:  # noqa: BLE001 - the caller asserts on it
        program.error = exc
        return program
    for name, value in exported.items():
        out = pulumi.Output.from_input(value)
        program.outputs[name] = _sync_await(out.future())
        if _sync_await(out.is_secret()):
            program.secret_outputs.add(name)
    return program


def ok_program(config: dict[str, Any] | None = None) -> Program:
    """run_program that must succeed."""
    program = run_program(config)
    assert program.error is None, program.error
    return program
