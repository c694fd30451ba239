"""The kind releases the lab accepts (config key ``kindVersion``) and what each one brings to the
kind host: its default node image (``kind create cluster`` without ``--image``, which is how the
boot calls it) and the containerd that image runs.

Read from the kind repository at each tag (github.com/kubernetes-sigs/kind):
- node image: ``pkg/apis/config/defaults/image.go`` (``const Image``);
- containerd: ``images/base/Dockerfile`` (``ARG CONTAINERD_VERSION``).

Only these releases are accepted: tests/unit/test_kind_patches.py emulates each one's kubeadm
config template and patch matching from the tag's own code, and kubectl (userdata.KUBECTL_VERSION,
v1.34) supports an API server one minor version either side (Kubernetes version skew policy), i.e.
the node images v1.33-v1.35 of v0.28.0-v0.31.0. Adding a release means adding it here and to that
test's table, from the new tag's code.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindRelease:
    node_image: str   # kindest/node:<k8s version>@sha256:<digest>
    containerd: str

    @property
    def kubernetes_version(self) -> str:
        return self.node_image.split(":", 1)[1].split("@", 1)[0]


KIND_RELEASES: dict[str, KindRelease] = {
    "v0.28.0": KindRelease(
        "kindest/node:v1.33.1@sha256:8d866994839cd096b3590681c55a6fa4a071fdaf33be7b9660e5697d2ed13002", "v2.1.0"),
    "v0.29.0": KindRelease(
        "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f", "v2.1.1"),
    "v0.30.0": KindRelease(
        "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a", "v2.1.4"),
    "v0.31.0": KindRelease(
        "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f", "v2.2.0"),
}
KIND_VERSIONS = tuple(KIND_RELEASES)
