"""Strict input, like ``kubectl apply`` with strict field validation (the default since kubectl 1.27).

Every NetworkPolicy, CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy and workload object is
checked against its schema before it is evaluated: the Kubernetes OpenAPI (v1.34, the lab's kubectl)
for the core kinds and the Cilium 1.18.10 CRDs' ``openAPIV3Schema`` for Cilium's, both extracted into
``schemas/`` beside this file (see schemas/README.md). Then the few API-server checks the schemas do
not carry (Kubernetes ``pkg/apis/networking/validation`` and ``pkg/apis/core/validation``: port
ranges, port names, protocols, endPort, ipBlock except) and the port values Cilium's agent cannot
parse (pkg/policy/api/rule_validation.go ``PortProtocol.sanitize``).

The validator covers the schema keywords these files use: ``$ref``, ``type``, ``properties``,
``additionalProperties``, ``required``, ``items``, ``enum``, ``pattern``, ``minimum``/``maximum``,
``minLength``/``maxLength``, ``minItems``/``maxItems``, ``oneOf``/``anyOf`` and
``x-kubernetes-int-or-string``. An object schema with ``properties`` and no ``additionalProperties``
is closed in a CRD too (a structural schema: the API server's strict validation reports unknown
fields). ``null`` stands for an absent field in a CRD (the API server drops it).

Errors are ValueError with the field path (``spec.ingress[0].ports[0].port: ...``), as kubectl does:
``unknown field "spec.ingres"``.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import re
from functools import lru_cache
from importlib import resources

K8S_FILE, CILIUM_FILE = "kubernetes-v1.34.json", "cilium-v1.18.10.json"
CILIUM_KINDS = ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}
# The CRD patterns are Go (RE2) regexps: linear-time, with Unicode classes. Python's backtracking
# ``re`` has no ``\\PC`` and takes exponential time on the nested repetitions below when a value
# does not match, so those patterns are checked through an equivalent form.
_EQUIVALENT = {
    r"^\PC*$": "^[^\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]*$",
    r"^([-a-zA-Z0-9_]+[.]?)+$": r"^[-a-zA-Z0-9_]+(\.[-a-zA-Z0-9_]+)*\.?$",
    r"^([-a-zA-Z0-9_*]+[.]?)+$": r"^[-a-zA-Z0-9_*]+(\.[-a-zA-Z0-9_*]+)*\.?$",
    r"^(\*?\*\.)?([-a-zA-Z0-9_]+\.?)+$": r"^(\*?\*\.)?[-a-zA-Z0-9_]+(\.[-a-zA-Z0-9_]+)*\.?$",
    # "^(numbers)|(name)$": a name alternative matches when some suffix is one (Go: unanchored start)
    r"^(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})|"
    r"([a-zA-Z0-9]-?)*[a-zA-Z](-?[a-zA-Z0-9])*$":
        r"^(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})|[a-zA-Z](-?[a-zA-Z0-9])*$",
}


@lru_cache(maxsize=None)
def _regex(pattern: str) -> re.Pattern:
    return re.compile(_EQUIVALENT.get(pattern, pattern))


@lru_cache(maxsize=None)
def _schemas(name: str) -> dict:
    return json.loads(resources.files(__package__).joinpath("schemas", name).read_text())


def checked_kinds() -> tuple[str, ...]:
    return tuple(_schemas(K8S_FILE)["kinds"]) + CILIUM_KINDS


def validate(obj: dict) -> None:
    """Raise ValueError naming the first bad field of ``obj`` (a kind without schema passes)."""
    kind = obj.get("kind")
    k8s = _schemas(K8S_FILE)
    if kind in CILIUM_KINDS:
        schema = _schemas(CILIUM_FILE)["kinds"][kind]
        _Check(k8s["$defs"], crd=True).value(schema, obj, "")
        _Check(k8s["$defs"], crd=False).value({"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
                                              obj.get("metadata"), "metadata")
        _cilium_ports(obj)
    elif kind in k8s["kinds"]:
        _Check(k8s["$defs"], crd=False).value(k8s["kinds"][kind], obj, "")
        if kind == "NetworkPolicy":
            _network_policy(obj.get("spec") or {})
        _container_ports(obj)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value) -> str:
    return json.dumps(value, default=str) if not isinstance(value, (dict, list)) else type(value).__name__


class _Check:
    def __init__(self, defs: dict, crd: bool):
        self.defs, self.crd = defs, crd

    def value(self, schema: dict, value, path: str, closed: bool = True) -> None:
        if "$ref" in schema:
            schema = self.defs[schema["$ref"].rsplit("/", 1)[1]]
        if value is None:
            if self.crd or "null" in _as_list(schema.get("type")) or "oneOf" in schema or not schema.get("type"):
                return
            raise ValueError(f"{path}: must not be null")
        self._type(schema, value, path)
        if "enum" in schema and value not in schema["enum"]:
            raise ValueError(f"{path}: unsupported value {_show(value)}: supported values: "
                             + ", ".join(json.dumps(v) for v in schema["enum"] if v is not None))
        if isinstance(value, str):
            self._string(schema, value, path)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                raise ValueError(f"{path}: {value} is below the minimum {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                raise ValueError(f"{path}: {value} is above the maximum {schema['maximum']}")
        elif isinstance(value, list):
            if "minItems" in schema and len(value) < schema["minItems"]:
                raise ValueError(f"{path}: needs at least {schema['minItems']} items")
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                raise ValueError(f"{path}: has more than {schema['maxItems']} items")
            for i, item in enumerate(value):
                if "items" in schema:
                    self.value(schema["items"], item, f"{path}[{i}]")
        elif isinstance(value, dict):
            self._object(schema, value, path, closed)
        for branch_key in ("oneOf", "anyOf"):
            if branch_key in schema and not (branch_key == "oneOf" and _int_or_string(schema)):
                self._branches(branch_key, schema[branch_key], value, path)

    def _type(self, schema: dict, value, path: str) -> None:
        if schema.get("x-kubernetes-int-or-string") or _int_or_string(schema):
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise ValueError(f"{path}: expected an integer or a string, got {_show(value)}")
            return
        types = [t for t in _as_list(schema.get("type")) if t != "null"]
        if not types or any(_is(t, value) for t in types):
            return
        raise ValueError(f"{path}: expected {' or '.join(types)}, got {type(value).__name__} {_show(value)}")

    def _string(self, schema: dict, value: str, path: str) -> None:
        if "pattern" in schema and _regex(schema["pattern"]).search(value) is None:
            raise ValueError(f"{path}: {_show(value)} does not match {schema['pattern']}")
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise ValueError(f"{path}: {_show(value)} is shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise ValueError(f"{path}: {_show(value)} is longer than {schema['maxLength']}")

    def _object(self, schema: dict, value: dict, path: str, closed: bool) -> None:
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key in schema.get("required") or []:
            if key not in value:
                raise ValueError(f"{_join(path, key)}: required field missing")
        for key, item in value.items():
            where = _join(path, str(key))
            if key in props:
                self.value(props[key], item, where)
            elif isinstance(extra, dict):
                self.value(extra, item, where)
            elif closed and (extra is False or (self.crd and props)):
                raise ValueError(f'unknown field "{where}"')

    def _branches(self, kind: str, branches: list, value, path: str) -> None:
        ok = 0
        for branch in branches:
            try:
                self.value(branch, value, path, closed=False)
            except ValueError:
                continue
            ok += 1
        if (kind == "oneOf" and ok == 1) or (kind == "anyOf" and ok >= 1):
            return
        names = [r for b in branches for r in b.get("required") or []]
        many = "exactly one" if kind == "oneOf" else "at least one"
        raise ValueError(f"{path or 'object'}: must set {many} of {', '.join(names)}" if names
                         else f"{path}: matches {ok} of its {kind} schemas")


def _as_list(t) -> list:
    return t if isinstance(t, list) else [t] if t else []


def _int_or_string(schema: dict) -> bool:
    kinds = {t for b in schema.get("oneOf") or [] for t in _as_list(b.get("type")) if t != "null"}
    return kinds == {"integer", "string"}


def _is(t: str, value) -> bool:
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "string" and isinstance(value, (datetime.date, datetime.datetime)):
        return True  # an unquoted timestamp YAML read as a date: a string to the API server
    return isinstance(value, _TYPES[t])


# --------------------------------------------------------------------------- API-server checks
def port_name_problem(name: str) -> str | None:
    """Kubernetes IsValidPortName (apimachinery/pkg/util/validation): an IANA_SVC_NAME, at most 15
    characters, lowercase letters, digits and '-', at least one letter, no '-' at either end or
    twice in a row."""
    if len(name) > 15:
        return "must be no more than 15 characters"
    if not _PORT_NAME.match(name) or "--" in name:
        return "must contain only lowercase alphanumerics and '-', starting and ending with an alphanumeric"
    if not re.search("[a-z]", name):
        return "must contain at least one letter (a number must not be quoted)"
    return None


def _port_number(value: int, path: str) -> None:
    if not 1 <= value <= 65535:
        raise ValueError(f"{path}: {value} must be between 1 and 65535, inclusive")


def _network_policy(spec: dict) -> None:
    """pkg/apis/networking/validation ValidateNetworkPolicyPort / ValidateIPBlock."""
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            where = f"spec.{direction}[{i}]"
            for j, port in enumerate((rule or {}).get("ports") or []):
                _network_policy_port(port or {}, f"{where}.ports[{j}]")
            for j, peer in enumerate((rule or {}).get(peers_key) or []):
                block = (peer or {}).get("ipBlock")
                if block:
                    _ip_block(block, f"{where}.{peers_key}[{j}].ipBlock")


def _network_policy_port(port: dict, path: str) -> None:
    protocol = port.get("protocol")
    if protocol is not None and protocol not in ("TCP", "UDP", "SCTP"):
        raise ValueError(f'{path}.protocol: unsupported value "{protocol}": supported values: "SCTP", "TCP", "UDP"')
    number, end = port.get("port"), port.get("endPort")
    if isinstance(number, int):
        _port_number(number, f"{path}.port")
    elif isinstance(number, str):
        problem = port_name_problem(number)
        if problem:
            raise ValueError(f'{path}.port: invalid port name "{number}": {problem}')
    if end is not None:
        if not isinstance(number, int):
            raise ValueError(f"{path}.endPort: may not be set unless port is a number")
        _port_number(end, f"{path}.endPort")
        if end < number:
            raise ValueError(f"{path}.endPort: {end} must be greater than or equal to port {number}")


def _ip_block(block: dict, path: str) -> None:
    try:
        cidr = ipaddress.ip_network(block.get("cidr", ""), strict=False)
    except ValueError as exc:
        raise ValueError(f"{path}.cidr: {exc}") from None
    for k, raw in enumerate(block.get("except") or []):
        try:
            ex = ipaddress.ip_network(raw, strict=False)
        except ValueError as exc:
            raise ValueError(f"{path}.except[{k}]: {exc}") from None
        if ex.version != cidr.version or not ex.subnet_of(cidr) or ex == cidr:
            raise ValueError(f"{path}.except[{k}]: {raw} must be a strict subset of cidr {block['cidr']}")


def _container_ports(obj: dict) -> None:
    """pkg/apis/core/validation validateContainerPorts: containerPort 1-65535, a valid port name."""
    spec, path = obj.get("spec") or {}, "spec"
    if obj.get("kind") == "CronJob":
        spec, path = ((spec.get("jobTemplate") or {}).get("spec") or {}), "spec.jobTemplate.spec"
    if obj.get("kind") != "Pod":
        spec, path = ((spec.get("template") or {}).get("spec") or {}), f"{path}.template.spec"
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            for j, port in enumerate((c or {}).get("ports") or []):
                where = f"{path}.{group}[{i}].ports[{j}]"
                if isinstance(port.get("containerPort"), int):
                    _port_number(port["containerPort"], f"{where}.containerPort")
                protocol = port.get("protocol")
                if protocol is not None and protocol not in ("TCP", "UDP", "SCTP"):
                    raise ValueError(f'{where}.protocol: unsupported value "{protocol}": supported values: '
                                     '"SCTP", "TCP", "UDP"')
                if port.get("name") and port_name_problem(port["name"]):
                    raise ValueError(f'{where}.name: invalid port name "{port["name"]}": '
                                     f'{port_name_problem(port["name"])}')


def _cilium_ports(obj: dict) -> None:
    """Ports the agent cannot parse (rule_validation.go PortProtocol.sanitize: ``strconv.ParseUint(port,
    0, 16)``: above 65535 is an error) and ranges that end below their start."""
    specs = ([("spec", obj["spec"])] if obj.get("spec") else []) + \
        [(f"specs[{i}]", s) for i, s in enumerate(obj.get("specs") or [])]
    for where, spec in specs:
        for section in ("ingress", "ingressDeny", "egress", "egressDeny"):
            for i, rule in enumerate(spec.get(section) or []):
                for j, pr in enumerate((rule or {}).get("toPorts") or []):
                    for k, pp in enumerate((pr or {}).get("ports") or []):
                        path = f"{where}.{section}[{i}].toPorts[{j}].ports[{k}]"
                        port = str(pp.get("port", ""))
                        if port.isdigit() and int(port) > 65535:
                            raise ValueError(f"{path}.port: {port} must be between 0 and 65535, inclusive")
                        end = pp.get("endPort")
                        if end and port.isdigit() and end < int(port):
                            raise ValueError(f"{path}.endPort: {end} must be greater than or equal to port {port}")
