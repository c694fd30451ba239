"""Issue 21 contract 9: Cilium fidelity, each rule with its source (Cilium docs or the agent's source,
v1.18 line; Kubernetes API validation for what the API server refuses)."""
from __future__ import annotations

import pytest

from cilium_verdicts import PolicyInputError

from .conftest import (
    ALLOWED,
    DEFAULT_DENY,
    NA,
    ccnp,
    check,
    cluster,
    cnp,
    deployment,
    docs_yaml,
    namespace,
    netpol,
    pod,
    probe,
)


# ------------------------------------------------------------------ io.cilium.k8s labels
def test_pod_labels_under_the_cilium_prefix_are_dropped():
    """cilium/cilium pkg/k8s/utils/utils.go ``filterPodLabels``: "returns a copy of the given labels
    map, without the labels owned by Cilium" (prefix ``io.cilium.k8s``, pkg/k8s/apis/cilium.io
    LabelPrefix), before SanitizePodLabels adds the namespace labels, namespace, service account and
    cluster. So a pod labelled ``io.cilium.k8s.namespace.labels.team: trusted`` in an untrusted
    namespace does not pass a CCNP that admits trusted namespaces, nor can it pose as another
    service account."""
    c = cluster(namespace("trusted", team="trusted"), namespace("other"),
                deployment("db", "trusted", ports=[5432]),
                pod("poser", "other", labels={"app": "poser", "io.cilium.k8s.namespace.labels.team": "trusted",
                                              "io.cilium.k8s.policy.serviceaccount": "admin"}),
                pod("friend", "trusted", labels={"app": "friend"}),
                ccnp("trusted-only", endpointSelector={"matchLabels": {"app": "db"}},
                     ingress=[{"fromEndpoints": [{"matchLabels": {"io.cilium.k8s.namespace.labels.team": "trusted"}},
                                                 {"matchLabels": {"io.cilium.k8s.policy.serviceaccount": "admin"}}]}]))
    check(probe(c, "trusted/friend", "trusted/db", 5432), "allow", ALLOWED, ALLOWED)
    check(probe(c, "other/poser", "trusted/db", 5432), "drop", ALLOWED, DEFAULT_DENY)
    assert "io.cilium.k8s.namespace.labels.team" not in c.workloads["other/poser"].cilium_labels
    assert c.workloads["other/poser"].cilium_labels["io.cilium.k8s.policy.serviceaccount"] == "default"


# ------------------------------------------------------------------ egress named port conflicts
def test_cnp_egress_named_port_with_several_numbers_is_skipped():
    """cilium#12567 (Cilium 1.18 still): an egress ``toPorts`` named port resolves against every pod's
    named ports; when "http" is 80 on one pod and 8123 on another the agent logs "Skipping named port
    ... duplicate named ports" and the rule allows nothing on it. A name used with one number still
    works, and ingress named ports resolve on the selected pod."""
    def c(clickhouse_port_name):
        return cluster(deployment("server"), deployment("cache", ports=[("http", 80)]),
                       deployment("clickhouse", ports=[(clickhouse_port_name, 8123)]),
                       cnp("server-egress", endpointSelector={"matchLabels": {"app": "server"}},
                           egress=[{"toEndpoints": [{}], "toPorts": [{"ports": [{"port": "http", "protocol": "TCP"}]}]}]))
    conflict = c("http")
    check(probe(conflict, "default/server", "default/clickhouse", 8123), "drop", DEFAULT_DENY, NA)
    check(probe(conflict, "default/server", "default/cache", 80), "drop", DEFAULT_DENY, NA)
    unique = c("clickhouse")
    check(probe(unique, "default/server", "default/cache", 80), "allow", ALLOWED, ALLOWED)


# ------------------------------------------------------------------ refused policies
@pytest.mark.parametrize("port_rule, reason", [
    ({"ports": [{"port": "80", "protocol": "UDP"}], "rules": {"http": [{"method": "GET"}]}},
     "L7 rules can only apply to TCP (not UDP) except for DNS rules"),
    ({"ports": [{"port": "53", "endPort": 60, "protocol": "UDP"}], "rules": {"dns": [{"matchPattern": "*"}]}},
     "DNS rules do not support port ranges"),
])
def test_policies_the_agent_refuses_are_not_in_force(port_rule, reason):
    """pkg/policy/api/rule_validation.go PortRule.sanitize: "L7 rules can only apply to TCP (not %s)
    except for DNS rules"; PortProtocol.sanitize: "DNS rules do not support port ranges". The agent's
    Parse fails, so the policy does nothing: client's egress stays unisolated."""
    c = cluster(deployment("client"), deployment("server", ports=[80]),
                cnp("bad", endpointSelector={"matchLabels": {"app": "client"}},
                    egress=[{"toEndpoints": [{}], "toPorts": [port_rule]}]))
    assert c.warnings == [f"CiliumNetworkPolicy default/bad: egress[0].toPorts[0]: {reason}: rejected by Cilium, "
                          "the whole CiliumNetworkPolicy is not in force"]
    assert c.policies == []
    check(probe(c, "default/client", "default/server", 80), "allow", ALLOWED, ALLOWED)


def test_to_cidr_set_except_outside_its_cidr_is_refused():
    """rule_validation.go CIDRRule.sanitize: each except must be "contained within the allowed CIDR
    prefix", else "allow CIDR prefix %s does not contain exclude CIDR prefix %s"."""
    c = cluster(deployment("client"),
                cnp("cidr", endpointSelector={"matchLabels": {"app": "client"}},
                    egress=[{"toCIDRSet": [{"cidr": "192.0.2.0/24", "except": ["198.51.100.0/24"]}]}]))
    assert c.warnings == ["CiliumNetworkPolicy default/cidr: toCIDRSet[0]: allow CIDR prefix 192.0.2.0/24 does not "
                          "contain exclude CIDR prefix 198.51.100.0/24: rejected by Cilium, the whole "
                          "CiliumNetworkPolicy is not in force"]
    check(probe(c, "default/client", "world:203.0.113.9", 443), "allow", ALLOWED, NA)


def test_one_invalid_specs_entry_rejects_the_whole_cnp():
    """pkg/k8s/apis/cilium.io/v2/cnp_types.go Parse: ``for _, rule := range r.Specs { if err :=
    rule.Sanitize(); err != nil { return nil, ... "Invalid CiliumNetworkPolicy specs" } }``: the valid
    first rule set is not in force either."""
    policy = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "two", "namespace": "default"},
              "specs": [{"endpointSelector": {"matchLabels": {"app": "server"}}, "ingress": [{}]},
                        {"endpointSelector": {"matchLabels": {"app": "client"}},
                         "ingress": [{"toPorts": [{"ports": [{"port": "53"}], "rules": {"dns": [{"matchPattern": "*"}]}}]}]}]}
    c = cluster(deployment("client"), deployment("server", ports=[80]), policy)
    assert c.policies == []
    assert c.warnings == ["CiliumNetworkPolicy default/two specs[1]: ingress[0].toPorts[0]: DNS rules are not allowed "
                          "on ingress: rejected by Cilium, the whole CiliumNetworkPolicy is not in force"]
    check(probe(c, "default/client", "default/server", 80), "allow", ALLOWED, ALLOWED)


@pytest.mark.parametrize("obj, reason", [
    # Kubernetes IsValidPortName: "must contain at least one letter" - "80" quoted is a bad name
    (netpol("np", podSelector={}, ingress=[{"ports": [{"port": "80"}]}]),
     'spec.ingress[0].ports[0].port: invalid port name "80": must contain at least one letter'),
    # CRD PortProtocol.port is ``type: string``
    (cnp("p", endpointSelector={}, ingress=[{"toPorts": [{"ports": [{"port": 80}]}]}]),
     "spec.ingress[0].toPorts[0].ports[0].port: expected string, got int 80"),
    # CRD PortProtocol ``required: [port]`` (the agent: "Port must be specified")
    (cnp("p", endpointSelector={}, ingress=[{"toPorts": [{"ports": [{"protocol": "TCP"}]}]}]),
     "spec.ingress[0].toPorts[0].ports[0].port: required field missing"),
])
def test_policies_the_api_server_refuses_are_errors_naming_the_reason(obj, reason):
    """The API server refuses these objects (kubectl apply fails), so they never exist: the evaluator
    refuses the input with the reason (exit 2 in the CLI)."""
    with pytest.raises(PolicyInputError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        cluster(obj)


# ------------------------------------------------------------------ explicit empty endpoints
@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_explicit_empty_endpoints_select_nothing_unlike_absent(direction):
    """cilium#29608: ``fromEndpoints: []`` / ``toEndpoints: []`` is an empty selector list that selects
    no endpoint, while an absent field leaves an L4-only rule that applies to every peer (docs "Layer 4
    Examples": "if no L3 ... it applies to all endpoints")."""
    key = "fromEndpoints" if direction == "ingress" else "toEndpoints"
    subject = "server" if direction == "ingress" else "client"
    ports = [{"ports": [{"port": "80", "protocol": "TCP"}]}]

    def c(rule):
        return cluster(deployment("client"), deployment("server", ports=[80]),
                       cnp("p", endpointSelector={"matchLabels": {"app": subject}}, **{direction: [rule]}))
    v = probe(c({key: [], "toPorts": ports}), "default/client", "default/server", 80)
    assert v.verdict == "drop"
    assert (v.ingress if direction == "ingress" else v.egress) == DEFAULT_DENY
    check(probe(c({"toPorts": ports}), "default/client", "default/server", 80), "allow", ALLOWED, ALLOWED)


# ------------------------------------------------------------------ hostNetwork pods
def _host_network_cluster(*policies):
    exporter = deployment("node-exporter", "kube-system", ports=[9100], kind="DaemonSet")
    exporter["spec"]["template"]["spec"]["hostNetwork"] = True
    return cluster(exporter, deployment("web", ports=[80]), *policies)


def test_host_network_pods_are_not_selected_by_policies():
    """docs.cilium.io "Endpoint" / "Host Firewall": pods with hostNetwork share the node's network
    namespace and are not Cilium endpoints; only host policies (nodeSelector) govern the node. A CCNP
    that would isolate them does nothing."""
    c = _host_network_cluster(ccnp("deny-all", endpointSelector={}, ingress=[{}], egress=[{}]))
    exporter = c.workloads["kube-system/node-exporter"]
    assert c.selecting(exporter, "ingress") == [] and c.selecting(exporter, "egress") == []
    check(probe(c, "default/web", "kube-system/node-exporter", 9100), "drop", DEFAULT_DENY, NA)  # web is isolated
    v = probe(c, "kube-system/node-exporter", "default/web", 80)
    assert v.egress == ALLOWED and v.ingress == DEFAULT_DENY


@pytest.mark.parametrize("rule, allowed", [
    ({"fromEndpoints": [{}]}, False),                     # selectors never match a non-endpoint
    ({"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system"}}]}, False),
    ({"fromEntities": ["host"]}, True),                   # same node: the host entity
    ({"fromEntities": ["remote-node"]}, True),            # another node: remote-node
    ({"fromEntities": ["cluster"]}, True),                # "cluster" includes host and remote-node
    ({"fromEntities": ["world"]}, False),
])
def test_host_network_peers_are_host_or_remote_node(rule, allowed):
    """docs.cilium.io "Entities based": "host: The local host. This also includes all containers running
    in host networking mode on the local host"; "remote-node: Any node in any of the connected clusters
    other than the local host. This also includes all containers running in host-networking mode on
    remote nodes". pkg/policy/api/entity.go InitEntities: the ``cluster`` entity's selectors are
    host, remote-node, init, health, unmanaged and the cluster's endpoints."""
    c = _host_network_cluster(cnp("web", endpointSelector={"matchLabels": {"app": "web"}}, ingress=[rule]))
    v = probe(c, "kube-system/node-exporter", "default/web", 80)
    assert v.verdict == ("allow" if allowed else "drop"), v.why


# ------------------------------------------------------------------ CIDR groups
VPN_GROUP = """
apiVersion: cilium.io/v2alpha1
kind: CiliumCIDRGroup
metadata:
  name: vpn-example-1
  labels:
    role: vpn
spec:
  externalCIDRs:
    - "10.48.0.0/24"
    - "10.16.0.0/24"
"""


@pytest.mark.parametrize("entry", [{"cidrGroupRef": "vpn-example-1"}, {"cidrGroupSelector": {"matchLabels": {"role": "vpn"}}}])
def test_cidr_group_ref_and_selector_stand_for_the_groups_cidrs(entry):
    """docs.cilium.io "CiliumCIDRGroup": the docs' group vpn-example-1 (10.48.0.0/24, 10.16.0.0/24)
    "can be referenced in a CiliumNetworkPolicy by using the fromCIDRSet directive. CCGs may be
    selected by names or labels." (here in the egress form, toCIDRSet, so a probe can dial it)."""
    c = cluster(deployment("client"), docs_yaml(VPN_GROUP),
                cnp("to-vpn", endpointSelector={"matchLabels": {"app": "client"}}, egress=[{"toCIDRSet": [entry]}]))
    assert c.warnings == []
    check(probe(c, "default/client", "world:10.48.0.7", 443), "allow", ALLOWED, NA)
    check(probe(c, "default/client", "world:10.16.0.200", 443), "allow", ALLOWED, NA)
    check(probe(c, "default/client", "world:10.17.0.1", 443), "drop", DEFAULT_DENY, NA)


def test_a_missing_cidr_group_is_warned_by_name_without_refusing_the_file():
    """A cidrGroupRef to a group that does not exist adds no address (Cilium reports the missing group,
    cilium#25020, and keeps the policy)."""
    c = cluster(deployment("client"),
                cnp("to-vpn", endpointSelector={"matchLabels": {"app": "client"}},
                    egress=[{"toCIDRSet": [{"cidrGroupRef": "nowhere"}]}]))
    assert c.warnings == ["CiliumNetworkPolicy default/to-vpn: egress[0].toCIDRSet[0]: cidrGroupRef nowhere: no "
                          "CiliumCIDRGroup of that name in the input: it adds no address"]
    check(probe(c, "default/client", "world:10.48.0.7", 443), "drop", DEFAULT_DENY, NA)


# ------------------------------------------------------------------ IPv6 literals
def test_an_ipv6_literal_world_destination_is_an_address():
    """RFC 4291 text form: ``2001:db8::1`` is an address, so no DNS lookup happens and toCIDR matches
    it (docs.cilium.io "IP/CIDR based": toCIDR takes IPv4 and IPv6 prefixes); toFQDNs never matches
    an IP literal."""
    c = cluster(deployment("client"),
                cnp("v6", endpointSelector={"matchLabels": {"app": "client"}},
                    egress=[{"toCIDR": ["2001:db8::/32"]}]))
    v = probe(c, "default/client", "world:2001:db8::1", 443)
    check(v, "allow", ALLOWED, NA)
    assert not any(line.startswith("DNS:") for line in v.why)
    check(probe(c, "default/client", "world:2001:db9::1", 443), "drop", DEFAULT_DENY, NA)
