"""Calico's Stars policy demo (seed 003: the multicloud version), on one Cilium cluster.

Workloads are the Stars manifests (Calico docs v3.1 tutorials/stars-policy/manifests 00..04, as the
EKS workshop copies them in aws-samples/eks-workshop content/beginner/120_network-policies/calico/
stars_policy_demo/create_resources.files/): namespace ``stars`` with ``frontend`` (:80) and
``backend`` (:6379), namespace ``client`` (label ``role: client``) with ``client`` (:9000), namespace
``management-ui`` (label ``role: management-ui``) with ``management-ui`` (:9001) behind the seed's
Service port 80 -> 9001 (the seed makes it a LoadBalancer; here ClusterIP, since nothing outside the
cluster is part of the lab). Each pod carries a curl sidecar for the probes. The demo's
ReplicationControllers are Deployments here (same labels, ports and Services; the lab restarts and
waits on Deployments).

**Stand-in images.** The demo's calico/star-probe:v0.1.0 and calico/star-collect:v0.1.0 date from 2016
(projectcalico/star, ``docker build -t calico/star-probe``, no multi-platform build) and no published
source gives their manifest media type; kind's nodes run containerd 2, which refuses Docker schema-1
manifests (tests/unit/test_images.py keeps the table). The lab tests the network, not the UI, so
hashicorp/http-echo - the eks-retail pack's stand-in - serves the same ports (80, 6379, 9000, 9001)
and answers every path the probes request (``GET /status``, ``GET /``) with 200. The star-probes' own
polling of each other is what the lab's probes make from the curl sidecars (APP_TRAFFIC).

**The seed's cross-cluster ipBlock rules.** The seed splits the app over two clusters, so on the
on-prem cluster the ``allow-ui`` (stars) and ``frontend-policy`` rules name the EKS pods by pod IP:
``ipBlock: {cidr: <management-ui pod IP>/32}`` and ``ipBlock: {cidr: <client pod IP>/32}``, and the
seed says these stand for "the identity of the management-ui workload" / "of the client workload",
giving "the same effective policy as the original Calico Stars Demo". On one cluster those identities
are the original demo's selectors — ``namespaceSelector: {matchLabels: {role: management-ui}}`` and
``namespaceSelector: {matchLabels: {role: client}}`` — and that is what this pack applies. (An ipBlock
with a pod IP would not work here anyway: Cilium's ipBlock/CIDR rules never match pod IPs,
cilium/cilium#9209.) The seed's ``extensions/v1beta1`` allow-ui becomes ``networking.k8s.io/v1``.

Stage order is the seed's: default-deny (stars and client), backend-policy, allow-ui (client and
stars), frontend-policy.
"""
from __future__ import annotations

from cilium_verdicts import Probe

from . import _seed, k8s
from .base import Context, LabProbe, Stage

NAME = "stars"
SEED = "003"
TITLE = "Calico Stars demo on one cluster: client -> frontend -> backend, management-ui sees all"
NEEDS: frozenset[str] = frozenset()

ECHO_IMAGE = k8s.ECHO_IMAGE
ECHO_UID = k8s.ECHO_UID
# (workload, service port, container port, what a client requests)
WORKLOADS = {
    "stars/frontend": (80, 80, "GET /status"),
    "stars/backend": (6379, 6379, "GET /status"),
    "client/client": (9000, 9000, "GET /status"),
    "management-ui/management-ui": (80, 9001, "GET /"),
}


def _app(ns: str, role: str, port: int) -> dict:
    """One Stars workload (its demo manifest's labels and container port) served by the stand-in."""
    main = {"name": role, "image": ECHO_IMAGE, "imagePullPolicy": "IfNotPresent",
            "args": [f"-listen=:{port}", f"-text={role}"],
            "ports": [{"containerPort": port}],
            "readinessProbe": {"httpGet": {"path": "/health", "port": port}, "periodSeconds": 5},
            "resources": k8s.resources("10m", "16Mi", "64Mi"),
            "securityContext": k8s.non_root(ECHO_UID)}
    # A non-root process may bind port 80 only with the unprivileged port range opened in the pod's
    # network namespace (a "safe" sysctl, allowed by the kubelet by default since Kubernetes 1.22).
    pod_security = ({"sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]}
                    if port < 1024 else None)
    return k8s.deployment(ns, role, {"role": role}, [main, k8s.curl_sidecar()],
                           probe_container=k8s.CURL_CONTAINER, pod_security=pod_security)


def workloads(ctx: Context | None = None) -> list[dict]:
    return [
        # 00-namespace.yaml
        k8s.namespace("stars"),
        # 01-management-ui.yaml with the seed's Service (port 80 -> 9001)
        k8s.namespace("management-ui", {"role": "management-ui"}),
        k8s.service("management-ui", "management-ui", {"role": "management-ui"},
                     [{"port": 80, "targetPort": 9001}]),
        _app("management-ui", "management-ui", 9001),
        # 02-backend.yaml
        k8s.service("stars", "backend", {"role": "backend"}, [{"port": 6379, "targetPort": 6379}]),
        _app("stars", "backend", 6379),
        # 03-frontend.yaml
        k8s.service("stars", "frontend", {"role": "frontend"}, [{"port": 80, "targetPort": 80}]),
        _app("stars", "frontend", 80),
        # 04-client.yaml (the seed's "kubectl create ns client" first; the file's Namespace adds the label)
        k8s.namespace("client", {"role": "client"}),
        k8s.service("client", "client", {"role": "client"}, [{"port": 9000, "targetPort": 9000}]),
        _app("client", "client", 9000),
    ]


# ---------------------------------------------------------------------------------------- policies
# The seed's policies are scenarios/seed_manifests/stars/<file>.yaml (scenarios._seed), each
# with its step: default-deny.yaml verbatim (no namespace: the seed applies it with ``-n stars`` and
# ``-n client``), backend-policy.yaml and allow-ui/client.yaml as the seed has them, allow-ui/stars.yaml
# and frontend-policy.yaml with the cross-cluster ipBlock peers replaced by the identities they stand
# for (the module docstring).
_POLICIES = {  # stage key -> (manifest file, the namespace ``kubectl apply -n`` gives it, if any)
    # seed step 1: "kubectl apply -n stars ... -f ~/tmp/default-deny.yaml" and "-n client"
    "default-deny/stars": ("default-deny", "stars"),
    "default-deny/client": ("default-deny", "client"),
    # seed step 2: "Allow frontend as client of backend"
    "backend-policy": ("backend-policy", None),
    # seed step 3: "Allow management-ui as client of client" (identical to the original)
    "allow-ui/client": ("allow-ui/client", None),
    # seed step 4: "Allow management-ui (EKS) as client of the stars namespace services": the
    # original demo's namespaceSelector role: management-ui for the seed's ipBlock of the pod IP
    "allow-ui/stars": ("allow-ui/stars", None),
    # seed step 5: "Allow client (EKS) as client of frontend (on-prem)": namespaceSelector role: client
    "frontend-policy": ("frontend-policy", None),
}

_DENY = ("default-deny/stars", "default-deny/client")
_STAGES = (
    ("open", '"When accessing the UI with no network-policies applied" (Accessing the UI)', ()),
    ("default-deny", '"Apply default deny policies to each of application services\' namespaces" '
                     "(Applying Network Policy, step 1)", _DENY),
    ("backend-policy", '"Allow frontend as client of backend" (step 2)', _DENY + ("backend-policy",)),
    ("allow-ui", '"Allow management-ui as client of client" and "... as client of the stars namespace '
                 'services" (steps 3 and 4)', _DENY + ("backend-policy", "allow-ui/client", "allow-ui/stars")),
    ("frontend-policy", '"Allow client (EKS) as client of frontend (on-prem)" (step 5): "C allowed client to '
                        'F, and F allowed client to B"',
     _DENY + ("backend-policy", "allow-ui/client", "allow-ui/stars", "frontend-policy")),
)


def policy(key: str) -> dict:
    """One of the policy objects of the stages (a key of _POLICIES), freshly parsed."""
    file, namespace = _POLICIES[key]
    return _seed.manifest(NAME, file, namespace=namespace)


STAGES = _seed.stage_names(_STAGES)


def stages(ctx: Context | None = None) -> list[Stage]:
    return _seed.staged(_STAGES, policy)


# ---------------------------------------------------------------------------------------- probes
# Who talks to whom in the Stars app: each star-probe's ``--urls`` (02-backend.yaml, 03-frontend.yaml:
# all three services; 04-client.yaml: frontend and backend), and the management-ui polling the three
# for the picture. Nothing in the app connects *to* the management-ui.
APP_TRAFFIC = {
    "stars/frontend": ("stars/backend", "client/client"),
    "stars/backend": ("stars/frontend", "client/client"),
    "client/client": ("stars/frontend", "stars/backend"),
    "management-ui/management-ui": ("client/client", "stars/frontend", "stars/backend"),
}


def probes(ctx: Context | None, stage: Stage) -> list[LabProbe]:
    """The app's own requests (APP_TRAFFIC), by service name on the service port, as the star-probes
    make them (``--urls=http://frontend.stars:80/status,...``; the seed replicates the Services into
    each cluster's DNS for exactly that). No seed policy touches egress, so DNS never stands in the
    way. Policies see the endpoint ports (80, 6379, 9000); the pod-IP view of every pair is
    ``cilium_verdicts.all_pairs``."""
    out = []
    for src, dsts in APP_TRAFFIC.items():
        for dst in dsts:
            svc_port, _, request = WORKLOADS[dst]
            ns, name = dst.split("/")
            out.append(LabProbe(traffic=Probe(source=src, to=dst, port=svc_port, via="service-name",
                                              request=request),
                                note=f"{src} -> http://{name}.{ns}:{svc_port}{request.split(' ', 1)[1]}"))
    return out
