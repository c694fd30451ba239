"""Issue 21 contract 2: strict input, like kubectl's strict field validation.

Expected outcomes come from the schemas' sources and the API server's documented validation:
- kubernetes.io "kubectl apply" / "Field validation": with ``--validate=strict`` (the default) "the
  server ... will fail the request if it has unknown or duplicate fields"; the message names the field
  path, e.g. ``strict decoding error: unknown field "spec.ingres"``.
- NetworkPolicy API reference, NetworkPolicyPort: "port ... This can either be a numerical or named
  port on a pod"; "endPort ... must be equal or greater than port"; protocol "TCP, UDP, or SCTP";
  Kubernetes validation (IsValidPortNum): a port number is "between 1 and 65535, inclusive";
  IsValidPortName: a port name "must contain at least one letter".
- Cilium 1.18.10 CRD (tests/reference/cilium/v1.18.10/crds/ciliumnetworkpolicies.yaml):
  PortProtocol ``port`` is ``type: string`` and ``required``; ``protocol`` enum TCP, UDP, SCTP, ANY;
  spec ``oneOf`` endpointSelector / nodeSelector. rule_validation.go PortProtocol.sanitize parses a
  numeric port with ``strconv.ParseUint(port, 0, 16)``: above 65535 is refused.
"""
from __future__ import annotations

import importlib.util
import json
import pathlib

import pytest
import yaml

from cilium_verdicts import Cluster, PolicyInputError
from cilium_verdicts.cli import main

from .conftest import cnp, deployment, netpol, pod

SCHEMAS = pathlib.Path(__file__).resolve().parents[3] / "cilium_verdicts" / "schemas"


def _np_port(**port) -> dict:
    return netpol("np", podSelector={}, ingress=[{"ports": [port]}])


def _cnp_port(**port) -> dict:
    return cnp("p", endpointSelector={}, ingress=[{"toPorts": [{"ports": [port]}]}])


CASES = [
    # unknown / misspelt fields
    (netpol("np", podSelector={}, ingres=[{}]), 'NetworkPolicy default/np: unknown field "spec.ingres"'),
    (netpol("np", podselector={"matchLabels": {"app": "a"}}), 'NetworkPolicy default/np: unknown field "spec.podselector"'),
    (netpol("np", podSelector={}, ingress=[{"from": [{"podselector": {}}]}]),
     'unknown field "spec.ingress[0].from[0].podselector"'),
    (cnp("p", endpointSelector={}, ingres=[{}]), 'CiliumNetworkPolicy default/p: unknown field "spec.ingres"'),
    (cnp("p", endpointSelector={}, ingress=[{"fromEndpoint": [{}]}]), 'unknown field "spec.ingress[0].fromEndpoint"'),
    (deployment("d") | {"spec": {**deployment("d")["spec"], "replica": 2}}, 'Deployment default/d: unknown field "spec.replica"'),
    (pod("a") | {"spec": {"containers": [{"name": "c", "image": "x", "port": [{"containerPort": 80}]}]}},
     'unknown field "spec.containers[0].port"'),
    # wrong types
    (_np_port(port=80, endPort="90"), "spec.ingress[0].ports[0].endPort: expected integer, got str"),
    (_cnp_port(port=80), "spec.ingress[0].toPorts[0].ports[0].port: expected string, got int 80"),
    (netpol("np", podSelector=[]), "spec.podSelector: expected object, got list"),
    # out-of-range values, bad protocols, bad names
    (_np_port(port=0), "spec.ingress[0].ports[0].port: 0 must be between 1 and 65535, inclusive"),
    (_np_port(port=99999), "spec.ingress[0].ports[0].port: 99999 must be between 1 and 65535, inclusive"),
    (_np_port(port=90, endPort=80), "spec.ingress[0].ports[0].endPort: 80 must be greater than or equal to port 90"),
    (_np_port(port="http", endPort=80), "spec.ingress[0].ports[0].endPort: may not be set unless port is a number"),
    (_np_port(protocol="ICMP", port=80), 'spec.ingress[0].ports[0].protocol: unsupported value "ICMP"'),
    (_np_port(port="80"), 'spec.ingress[0].ports[0].port: invalid port name "80": must contain at least one letter'),
    (_cnp_port(port="99999"), "spec.ingress[0].toPorts[0].ports[0].port: 99999 must be between 0 and 65535"),
    (_cnp_port(port="90", endPort=80), "spec.ingress[0].toPorts[0].ports[0].endPort: 80 must be greater than or equal"),
    (_cnp_port(port="80", protocol="ICMP"), 'spec.ingress[0].toPorts[0].ports[0].protocol: unsupported value "ICMP"'),
    (_cnp_port(port="80", endPort=70000), "spec.ingress[0].toPorts[0].ports[0].endPort: 70000 is above the maximum 65535"),
    (deployment("d", ports=[0]), "spec.template.spec.containers[0].ports[0].containerPort: 0 must be between 1 and 65535"),
    (netpol("np", podSelector={}, egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}}]}]),
     "spec.egress[0].to[0].ipBlock.except[0]: 192.168.0.0/16 must be a strict subset of cidr 10.0.0.0/8"),
    # required fields and one-of
    (_cnp_port(protocol="TCP"), "spec.ingress[0].toPorts[0].ports[0].port: required field missing"),
    (cnp("p", ingress=[{}]), "spec: must set exactly one of endpointSelector, nodeSelector"),
    (cnp("p", endpointSelector={}), "spec: must set at least one of ingress, ingressDeny, egress, egressDeny"),
]


@pytest.mark.parametrize("obj, message", CASES, ids=[m[:60] for _, m in CASES])
def test_each_error_class_names_object_and_field_path(obj, message):
    with pytest.raises(PolicyInputError) as exc:
        Cluster.from_objects([obj], source="in.yaml")
    text = str(exc.value)
    assert text.startswith("in.yaml: ") and message in text, text


def test_cli_exits_2_with_nothing_on_stdout(capsys, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump_all([pod("a"), netpol("np", podSelector={}, ingres=[{}])]))
    code = main(["-f", str(path), "--format", "json"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == f'error: {path}: NetworkPolicy default/np: unknown field "spec.ingres"\n'


def test_valid_objects_with_every_common_field_pass():
    """A NetworkPolicy using every field of the API reference, and a CNP using the Cilium docs' L7 and
    DNS fields, are accepted."""
    objects = [deployment("web", ports=[("http", 80)]),
               netpol("full", podSelector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
                      policyTypes=["Ingress", "Egress"],
                      ingress=[{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}},
                                         {"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.0/25"]}}],
                                "ports": [{"port": "http"}, {"port": 8000, "endPort": 8080, "protocol": "TCP"}]}],
                      egress=[{"to": [{"podSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}]}]),
               cnp("l7", endpointSelector={"matchLabels": {"app": "web"}},
                   egress=[{"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system"}}],
                            "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}],
                                         "rules": {"dns": [{"matchPattern": "*"}]}}]},
                           {"toFQDNs": [{"matchName": "api.github.com"}, {"matchPattern": "*.example.com"}]}],
                   ingress=[{"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                          "rules": {"http": [{"method": "GET", "path": "/public",
                                                              "headers": ["X-My-Header: true"]}]}}]}])]
    Cluster.from_objects(objects)


@pytest.mark.skipif(importlib.util.find_spec("kubernetes_validate") is None,
                    reason="kubernetes-validate (requirements-dev.txt) is not installed")
def test_vendored_schemas_equal_a_fresh_extraction():
    """schemas/ holds exactly what schemas/_extract.py derives from its sources (no hand edits)."""
    import kubernetes_validate  # noqa: PLC0415

    from cilium_verdicts.schemas import _extract  # noqa: PLC0415
    source = (pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
              / f"{_extract.K8S_VERSION}-local-strict")
    assert (SCHEMAS / _extract.K8S_FILE).read_text() == _extract.render(_extract.kubernetes(source))
    assert (SCHEMAS / _extract.CILIUM_FILE).read_text() == _extract.render(_extract.cilium())
    assert set(json.loads((SCHEMAS / _extract.K8S_FILE).read_text())["kinds"]) == {
        "NetworkPolicy", "Pod", "ReplicationController", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
        "Job", "CronJob"}


def test_a_valid_but_unmodelled_field_is_a_warning_that_marks_only_the_verdicts_it_may_change(capsys, tmp_path):
    """examples/policies/l3/service/service.yaml (docs.cilium.io "Services based": ``toServices``
    allows egress to a Service's backends) is valid but not modelled: it is named in a warning, only
    that rule is left out, and only the verdicts it could change (client's default-denied egress) carry
    ``"approximate": true``. An ignored deny rule (``icmps`` in egressDeny) can only drop what is
    allowed, so it marks the allowed cells of the pod it selects."""
    objects = [deployment("client", ports=[80]), deployment("backend", ports=[80]), deployment("other", ports=[80]),
               cnp("service-rule", endpointSelector={"matchLabels": {"app": "client"}},
                   egress=[{"toServices": [{"k8sService": {"serviceName": "backend", "namespace": "default"}}]},
                           {"toEndpoints": [{"matchLabels": {"app": "other"}}]}]),
               cnp("no-ping", endpointSelector={"matchLabels": {"app": "other"}},
                   egress=[{"toEntities": ["all"]}],
                   egressDeny=[{"icmps": [{"fields": [{"type": 8, "family": "IPv4"}]}]}])]
    path = tmp_path / "in.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    assert main(["-f", str(path), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert "warning: CiliumNetworkPolicy default/service-rule: egress[0].toServices is not supported: rule ignored" in err
    cells = {(c["from"], c["to"]): c for c in json.loads(out)["cells"]}
    client_backend = cells["default/client", "default/backend"]
    assert (client_backend["verdict"], client_backend["approximate"]) == ("drop", True)
    assert any("approximate: CiliumNetworkPolicy default/service-rule egress[0].toServices" in w
               for w in client_backend["why"])
    # egress[1] still applies and allows client -> other: an extra allow cannot change an allow
    assert cells["default/client", "default/other"]["verdict"] == "allow"
    assert "approximate" not in cells["default/client", "default/other"]
    # other's egress is allowed by toEntities all; the ignored deny rule might drop it
    assert (cells["default/other", "default/backend"]["verdict"], cells["default/other", "default/backend"]["approximate"]) \
        == ("allow", True)
    assert "approximate" not in cells["default/backend", "default/client"]  # no ignored rule in play
