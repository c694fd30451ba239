"""Past one stack: a GitOps bundle for a fleet of edge clusters (``python -m model render --fleet N --out DIR``).

Seed 000 is about controlling egress for 1000+ edge clusters; one Pulumi stack builds one. For hundreds
of clusters the same objects go out through GitOps instead: this module writes, for N clusters,

    DIR/clusters/<name>/manifests.yaml       every object the stack applies to one cluster
                                             (model.render.lab_objects: namespaces, test pods, the
                                             egress policy, its CEC, the platform's proxy guard),
                                             with that cluster's proxy address
    DIR/clusters/<name>/kustomization.yaml   kustomize.config.k8s.io/v1beta1: resources [manifests.yaml]
    DIR/clusters/<name>/cilium-values.yaml   the cluster's Cilium Helm values (cluster.name = <name>)
    DIR/argocd/applicationset.yaml           Argo CD ApplicationSet (argoproj.io/v1alpha1): a list
                                             generator with one element per cluster, each Application
                                             syncing clusters/<name> to the Argo CD cluster <name>
    DIR/flux/gitrepository.yaml              Flux GitRepository the Kustomizations read
    DIR/flux/kustomizations.yaml             one Flux Kustomization (kustomize.toolkit.fluxcd.io/v1) per
                                             cluster: path ./clusters/<name>, applied with the
                                             kubeconfig Secret <name>-kubeconfig

Cluster names are ``<prefix>-NNN`` (unique by construction; checked). Every cluster's CEC points at its
own proxy: ``proxy_addresses`` maps a cluster to its proxy, the rest use the default address (a fleet
behind one shared proxy host uses one address). Pure: no Pulumi; the caller writes the files.
"""
from __future__ import annotations

import pathlib
import re
from typing import Mapping

import yaml

from . import helm
from .lint import check
from .render import lab_objects
from .settings import Settings

try:  # libyaml's emitter when present (same YAML, faster: 200 clusters well under a second)
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _Dumper

FLEET_RENDER_MAX = 5000
DEFAULT_PREFIX = "edge"
DEFAULT_REPO_URL = "https://git.example.com/cilium-egress-lab-fleet.git"  # placeholder: --repo-url
DEFAULT_REVISION = "main"
ARGO_NAMESPACE, FLUX_NAMESPACE = "argocd", "flux-system"
APPLICATIONSET_NAME = GIT_REPOSITORY_NAME = "cilium-egress-lab"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class FleetError(ValueError):
    """Bad fleet input (one line naming the flag and the accepted values)."""


def cluster_names(n: int, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """``edge-001`` ... (zero-padded to the width of N, at least 3 digits): unique DNS labels."""
    if not isinstance(n, int) or not 1 <= n <= FLEET_RENDER_MAX:
        raise FleetError(f"--fleet: {n!r} is not accepted; accepted: an integer 1..{FLEET_RENDER_MAX}")
    width = max(3, len(str(n)))
    names = [f"{prefix}-{i:0{width}d}" for i in range(1, n + 1)]
    if not all(_NAME.match(x) and len(x) <= 63 for x in names):
        raise FleetError(f"--fleet-prefix: {prefix!r} does not make DNS labels; accepted: lower case "
                         "alphanumerics and '-', starting with an alphanumeric")
    return names


def _dump_all(objects) -> str:
    return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False)


def _dump(obj) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False)


def cluster_values(settings: Settings, name: str) -> dict:
    values = helm.helm_values(settings)
    values["cluster"] = {**values.get("cluster", {}), "name": name}
    return values


def kustomization() -> dict:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["manifests.yaml"]}


def application_set(names: list[str], repo_url: str, revision: str) -> dict:
    """One Argo CD Application per cluster (list generator; Go templates, missing keys are errors)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
        "metadata": {"name": APPLICATIONSET_NAME, "namespace": ARGO_NAMESPACE},
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{"list": {"elements": [{"cluster": n} for n in names]}}],
            "template": {
                "metadata": {"name": "cilium-egress-lab-{{.cluster}}"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": repo_url, "targetRevision": revision, "path": "clusters/{{.cluster}}"},
                    "destination": {"name": "{{.cluster}}"},
                    "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
                },
            },
        },
    }


def git_repository(repo_url: str, revision: str) -> dict:
    return {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": GIT_REPOSITORY_NAME, "namespace": FLUX_NAMESPACE},
            "spec": {"interval": "5m", "url": repo_url, "ref": {"branch": revision}}}


def flux_kustomization(name: str) -> dict:
    """Applied from the management cluster to cluster ``name`` with its kubeconfig Secret."""
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
            "spec": {"interval": "10m", "path": f"./clusters/{name}", "prune": True, "wait": True,
                     "timeout": "5m",
                     "sourceRef": {"kind": "GitRepository", "name": GIT_REPOSITORY_NAME},
                     "kubeConfig": {"secretRef": {"name": f"{name}-kubeconfig"}}}}


def bundle(settings: Settings, n: int, proxy_address: str, *, proxy_addresses: Mapping[str, str] | None = None,
           prefix: str = DEFAULT_PREFIX, repo_url: str = DEFAULT_REPO_URL,
           revision: str = DEFAULT_REVISION) -> dict[str, str]:
    """Relative path -> file text of the whole bundle. Raises FleetError on bad input and
    ValueError if the rendered objects fail Cilium's semantic checks (model.lint)."""
    names = cluster_names(n, prefix)
    if len(set(names)) != len(names):  # pragma: no cover - guaranteed by construction, checked anyway
        raise FleetError("--fleet: two clusters share a name")
    extra = sorted(set(proxy_addresses or {}) - set(names))
    if extra:
        raise FleetError(f"--proxy-for: {extra[0]} is not a cluster of this fleet; accepted: {names[0]} .. {names[-1]}")
    manifests: dict[str, str] = {}   # proxy address -> manifests text (identical for clusters sharing it)
    files: dict[str, str] = {}
    for name in names:
        address = (proxy_addresses or {}).get(name, proxy_address)
        if address not in manifests:
            objects = lab_objects(settings, address)
            problems = check(objects)
            if problems:
                raise ValueError("rendered objects fail Cilium's semantic checks: " + "; ".join(problems))
            manifests[address] = _dump_all(objects)
        header = f"# cluster {name}: every object the stack applies (proxy {address})\n"
        files[f"clusters/{name}/manifests.yaml"] = header + manifests[address]
        files[f"clusters/{name}/kustomization.yaml"] = _dump(kustomization())
        files[f"clusters/{name}/cilium-values.yaml"] = (
            f"# Cilium Helm values of cluster {name}: helm upgrade --install cilium cilium/cilium --version "
            f"{settings.cilium_version} -n kube-system -f cilium-values.yaml\n" + _dump(cluster_values(settings, name)))
    files["argocd/applicationset.yaml"] = _dump(application_set(names, repo_url, revision))
    files["flux/gitrepository.yaml"] = _dump(git_repository(repo_url, revision))
    files["flux/kustomizations.yaml"] = _dump_all([flux_kustomization(n) for n in names])
    return files


def write(out: pathlib.Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
