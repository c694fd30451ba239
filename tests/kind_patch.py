"""kind's kubeadm config generation and patching, emulated from the code of each accepted release.

Everything here follows the kind repository (github.com/kubernetes-sigs/kind) at the tags in
``TAGS``, read with ``git show <tag>:<path>``; the files are byte-identical across v0.28.0-v0.31.0
(pkg/internal/patch/{kubeyaml,resource,matchinfo,mergepatch,json6902patch}.go and
pkg/cluster/internal/kubeadm/config.go), so one emulation serves them all; v0.32.0 changed both
(see the notes below) and is not accepted.

- ``kubeadm_api_version``: pkg/cluster/internal/kubeadm/config.go ``Config()`` at v0.30.0:
  "assume the latest API version, then fallback if the k8s version is too low":
  ``ConfigTemplateBetaV3`` (``apiVersion: kubeadm.k8s.io/v1beta3``), ``ConfigTemplateBetaV2`` below
  Kubernetes v1.23.0. There is no v1beta4 template before v0.32.0 (which picks V4 from v1.36.0).
- ``cluster_configuration``: the same template's ClusterConfiguration document,
  ``metadata: {name: config}`` and ``apiServer.certSANs: [localhost, "{{.APIServerAddress}}"]``.
- ``api_version_of_6902_patch``: pkg/internal/patch/matchinfo.go ``groupVersionToAPIVersion``:
  ``version`` when group is empty, else ``group + "/" + version`` - so group "kubeadm.k8s.io" with
  version "" gives "kubeadm.k8s.io/".
- ``matches``: pkg/internal/patch/resource.go ``(r resource) matches``:
  ``m.Kind == o.Kind && (o.APIVersion == "" || m.APIVersion == o.APIVersion)`` - equality, no group-only
  or wildcard version.
- ``kube_yaml``: pkg/internal/patch/kubeyaml.go ``KubeYAML``: per document, every matching merge patch
  (``jsonpatch.MergePatch``, RFC 7386: a list replaces the list), then every matching JSON 6902 patch
  (``patch.Apply``, RFC 6902); a patch that matches nothing is dropped silently ("verify that all
  patches were used" is a comment, not code). Merge patches take their match info from their own
  ``kind``/``apiVersion`` (mergepatch.go ``parseYAMLMatchInfo``).
"""
from __future__ import annotations

import json_merge_patch
import jsonpatch
import yaml

from model.kind_releases import KIND_RELEASES

# The tags this file was checked against (each one's files listed above are the v0.30.0 ones).
TAGS = ("v0.28.0", "v0.29.0", "v0.30.0", "v0.31.0")


def _semver(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.lstrip("v").split("-")[0].split(".")[:3])


def kubeadm_api_version(tag: str, kubernetes_version: str) -> str:
    assert tag in TAGS, f"kind {tag}: emulation not checked against this tag's code"
    return "kubeadm.k8s.io/v1beta2" if _semver(kubernetes_version) < (1, 23, 0) else "kubeadm.k8s.io/v1beta3"


def cluster_configuration(tag: str, api_server_address: str) -> dict:
    """The ClusterConfiguration kind ``tag`` generates with its default node image."""
    k8s = KIND_RELEASES[tag].kubernetes_version
    return {"apiVersion": kubeadm_api_version(tag, k8s), "kind": "ClusterConfiguration",
            "metadata": {"name": "config"}, "kubernetesVersion": k8s,
            "apiServer": {"certSANs": ["localhost", api_server_address]}}


def api_version_of_6902_patch(group: str, version: str) -> str:
    return version if group == "" else group + "/" + version


def matches(document: dict, kind: str, api_version: str) -> bool:
    return document.get("kind", "") == kind and (api_version == "" or document.get("apiVersion", "") == api_version)


def kube_yaml(tag: str, document: dict, merge_patches: list[str], patches_6902: list[dict]) -> dict:
    assert tag in TAGS, f"kind {tag}: emulation not checked against this tag's code"
    doc = document
    for raw in merge_patches:
        for patch in yaml.safe_load_all(raw):
            if matches(doc, patch.get("kind", ""), patch.get("apiVersion", "")):
                doc = json_merge_patch.merge(doc, patch)
    for p in patches_6902:
        # v1alpha4 PatchJSON6902: group, version, kind, patch (yaml tags without omitempty: absent = "")
        if matches(doc, p.get("kind", ""), api_version_of_6902_patch(p.get("group", ""), p.get("version", ""))):
            doc = jsonpatch.apply_patch(doc, yaml.safe_load(p["patch"]))
    return doc


def api_cert_sans(tag: str, cluster: dict) -> list[str]:
    """The API server certificate's SANs kind ``tag`` asks kubeadm for, given a kind Cluster config."""
    doc = cluster_configuration(tag, cluster["networking"]["apiServerAddress"])
    patched = kube_yaml(tag, doc, cluster.get("kubeadmConfigPatches", []),
                        cluster.get("kubeadmConfigPatchesJSON6902", []))
    return patched["apiServer"]["certSANs"]


if __name__ == "__main__":  # python -m tests.kind_patch TAG KIND-CONFIG: the SANs, one a line (boot emulation)
    import sys
    with open(sys.argv[2]) as f:
        print("\n".join(api_cert_sans(sys.argv[1], yaml.safe_load(f))))
