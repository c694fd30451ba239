"""load_paths (files, directories, multi-document, kind: List) and warnings for what is not evaluated."""
from __future__ import annotations

import json

import pytest

from cilium_verdicts import Cluster, PolicyInputError, load_paths


def pod(name: str, ns: str = "default") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}}}


def cnp(spec: dict, name: str = "p") -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"endpointSelector": {}, **spec}}


def test_directories_recursively_sorted_multidoc_and_lists(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "c.yml").write_text("kind: Pod\nmetadata: {name: c}\n---\n---\nkind: Pod\nmetadata: {name: d}\n")
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: List\nitems:\n- {kind: Pod, metadata: {name: a1}}\n"
                                     "- {kind: PodList, items: [{kind: Pod, metadata: {name: a2}}]}\n")
    (tmp_path / "z.json").write_text(json.dumps(pod("z")))
    (tmp_path / "notes.txt").write_text("kind: Pod\nmetadata: {name: ignored}\n")
    objects, origins = load_paths([str(tmp_path)])
    assert [o["metadata"]["name"] for o in objects] == ["a1", "a2", "c", "d", "z"]
    assert [origins[i].rsplit("/", 1)[1] for i in range(5)] == ["a.yaml", "a.yaml", "c.yml", "c.yml", "z.json"]
    assert list(Cluster.from_objects(objects).workloads) == [
        "default/a1", "default/a2", "default/c", "default/d", "default/z", "kube-system/coredns"]


def test_files_are_read_in_the_order_given(tmp_path):
    for name in "xy":
        (tmp_path / f"{name}.yaml").write_text(json.dumps(pod(name)))
    objects, _ = load_paths([str(tmp_path / "y.yaml"), str(tmp_path / "x.yaml")])
    assert [o["metadata"]["name"] for o in objects] == ["y", "x"]


def test_errors_name_the_file(tmp_path):
    with pytest.raises(PolicyInputError, match="nowhere.yaml: no such file or directory"):
        load_paths([str(tmp_path / "nowhere.yaml")])
    (tmp_path / "bad.yaml").write_text("kind: Pod\nmetadata:\n  name: [x\n")
    with pytest.raises(PolicyInputError, match=r"bad\.yaml:4: YAML syntax error"):
        load_paths([str(tmp_path)])


def test_errors_name_file_and_object_from_origins(tmp_path):
    (tmp_path / "ns.yaml").write_text(json.dumps(pod("bar", "foo")))
    objects, origins = load_paths([str(tmp_path)])
    with pytest.raises(PolicyInputError) as exc:
        Cluster.from_objects(objects, origins=origins, strict_namespaces=True)
    assert str(exc.value) == (f"{tmp_path / 'ns.yaml'}: Pod foo/bar: namespace foo is not declared; add a Namespace "
                              "object (--strict-namespaces)")
    with pytest.raises(PolicyInputError, match="^mine.yaml: Pod foo/bar: namespace foo"):
        Cluster.from_objects(objects, source="mine.yaml", strict_namespaces=True)


def test_unsupported_kinds_are_reported_once_each():
    objects = [pod("a"), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
               {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}]
    assert Cluster.from_objects(objects).warnings == [
        "ConfigMap default/x: kind not evaluated (no effect on connectivity)",
        "ClusterRole r: kind not evaluated (no effect on connectivity)"]


@pytest.mark.parametrize("spec, warning", [
    ({"egress": [{"toServices": [{"k8sService": {"serviceName": "s", "namespace": "default"}}]}]},
     "CiliumNetworkPolicy default/p: egress[0].toServices is not supported: rule ignored"),
    ({"ingress": [{"fromRequires": [{}]}]}, "CiliumNetworkPolicy default/p: ingress[0].fromRequires is not supported: rule ignored"),
    ({"ingress": [{"icmps": [{"fields": [{"type": 8}]}]}]}, "CiliumNetworkPolicy default/p: ingress[0].icmps is not supported: rule ignored"),
    ({"ingress": [{"toPorts": [{"ports": [{"port": "9092", "protocol": "TCP"}], "rules": {"kafka": [{}]}}]}]},
     "CiliumNetworkPolicy default/p: ingress[0].toPorts[0].rules.kafka is not supported: rule ignored"),
    ({"ingress": [{"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                "rules": {"http": [{"method": "GET", "headerMatches": [
                                    {"name": "x", "secret": {"name": "s", "namespace": "default"}}]}]}}]}]},
     "CiliumNetworkPolicy default/p: ingress[0].toPorts[0].rules.http[0].headerMatches[0].secret is not supported: "
     "that HTTP rule is left out"),
    ({"egress": [{"toPorts": [{"ports": [{"port": "443"}], "serverNames": ["a.example"]}]}]},
     "CiliumNetworkPolicy default/p: egress[0].toPorts[0].serverNames is not supported: rule ignored"),
    ({"ingress": [{"fromEndpoints": [{"matchLabels": {"reserved:host": ""}}]}]},
     "CiliumNetworkPolicy default/p: ingress[0].fromEndpoints[0] label reserved:host is not supported: rule ignored"),
    ({"egress": [{"toEndpoints": [{}], "toCIDR": ["10.0.0.0/8"]}]},
     "CiliumNetworkPolicy default/p: egress[0]: combining toEndpoints and toCIDR is not supported yet: rejected by "
     "Cilium, the whole CiliumNetworkPolicy is not in force"),
    ({"ingress": [{"toPorts": [{"ports": [{"port": "53"}], "rules": {"dns": [{"matchPattern": "*"}]}}]}]},
     "CiliumNetworkPolicy default/p: ingress[0].toPorts[0]: DNS rules are not allowed on ingress: rejected by Cilium, "
     "the whole CiliumNetworkPolicy is not in force"),
])
def test_unsupported_or_rejected_cilium_fields_are_named(spec, warning):
    assert Cluster.from_objects([pod("a"), cnp(spec)]).warnings == [warning]


def test_an_unsupported_endpoint_selector_ignores_the_rule_set():
    policy = {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "h"},
              "spec": {"endpointSelector": {"matchLabels": {"reserved:host": ""}}, "ingress": [{}]}}
    assert Cluster.from_objects([pod("a"), policy]).warnings == [
        "CiliumClusterwideNetworkPolicy h: endpointSelector label reserved:host is not supported: rule set ignored"]


def test_an_ignored_rule_still_isolates_its_direction():
    """Cilium does evaluate toServices, so the policy does put the pod into egress default deny."""
    cluster = Cluster.from_objects([pod("a"), cnp({"egress": [{"toServices": [{"k8sService": {"serviceName": "s"}}]}]})])
    assert [p.ref for p in cluster.selecting(cluster.workloads["default/a"], "egress")] == ["CiliumNetworkPolicy default/p"]


def test_host_policies_and_unknown_spec_fields_are_reported():
    objects = [pod("a"), {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
                          "metadata": {"name": "host"}, "spec": {"nodeSelector": {}, "ingress": [{}]}},
               cnp({"ingress": [{}], "log": {"value": "x"}})]
    assert Cluster.from_objects(objects).warnings == [
        "CiliumClusterwideNetworkPolicy host: nodeSelector (host policy) is not supported: rule set ignored",
        "CiliumNetworkPolicy default/p: log is not supported: ignored"]


def test_network_policy_types_deviation_is_reported():
    """cilium#48703: Cilium enforces spec.ingress although policyTypes names only Egress."""
    np = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np"},
          "spec": {"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{}], "egress": [{}]}}
    assert Cluster.from_objects([np]).warnings == [
        "NetworkPolicy default/np: spec.ingress is set but policyTypes ['Egress'] lacks Ingress; Cilium enforces "
        "it anyway (cilium#48703)"]
