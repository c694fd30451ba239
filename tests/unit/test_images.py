"""Every image the lab runs, with its pinned tag (or digest) and the manifest media type it was checked
against, so containerd 2 on kind's nodes can pull it.

containerd 2 refuses Docker "image manifest v2, schema 1" (``application/vnd.docker.distribution.
manifest.v1+prettyjws``): "Pulling Schema 1 images have been deprecated and disabled by default since
containerd v2.0 ... will be completely removed in containerd v2.1" (containerd's pull error, quoted in
kubernetes/k8s.io#8650; containerd RELEASES.md deprecated features, containerd/containerd#10998). The
accepted kind releases run containerd v2.1.0-v2.2.0 (model/kind_releases.py). Docker Engine (which
pulls kindest/node on the host) removed schema-1 pulls as well (Docker docs, "Deprecated features":
"Pushing and pulling with image manifest v2 schema 1").

Nothing here queries a registry (none is reachable from the tests): each media type is taken from the
published source named beside it; a live ``pulumi up`` proves the pulls (the probes need the pods).
"""
from __future__ import annotations

import pytest

from model.kind_releases import KIND_RELEASES
from model.settings import load_settings
from scenarios import PACKS, Context, k8s

SCHEMA_1 = ("application/vnd.docker.distribution.manifest.v1+prettyjws",
            "application/vnd.docker.distribution.manifest.v1+json")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"

# image reference (exactly as the model writes it) -> (media type, source it was checked against)
IMAGES: dict[str, tuple[str, str]] = {
    "curlimages/curl:8.16.0": (
        OCI_INDEX,
        "curl/curl-container create_multi.sh: `buildah manifest create` and one `buildah manifest add` per "
        "platform (linux/386, arm/v7, amd64, arm64, ppc64le): a multi-platform index, OCI format (buildah's "
        "default); a schema-1 manifest cannot be multi-platform"),
    "hashicorp/http-echo:1.0.0": (
        OCI_INDEX,
        "hashicorp/http-echo v1.0.0 (2023): released through HashiCorp's CRT pipeline (.release/ci.hcl, "
        "promote-production-docker), which publishes multi-platform images built with docker buildx"),
    "busybox:1.36.1": (
        OCI_INDEX,
        "Docker Official Image (docker-library/official-images): multi-platform OCI indexes with build "
        "attestations since 2023"),
    "docker.io/kennethreitz/httpbin@sha256:599fe5e5073102dbb0ee3dbb65f049dab44fa9fc251f6835c9990f8fb196a72b": (
        DOCKER_V2,
        "the digest Docker Engine prints for `docker pull kennethreitz/httpbin` (2021 posts) and still pulls "
        "in 2026 ('the manifest the rig pulled on 2026-08-21 with --platform linux/amd64', a public httpbin "
        "pinning script); Engine v28+ cannot pull schema 1 at all, so the manifest is schema 2"),
    **{release.node_image: (
        OCI_INDEX,
        f"kind {tag} release (pkg/apis/config/defaults/image.go pins this digest): node images are built "
        f"for amd64 and arm64 with docker buildx (kind images/base, hack/release), a multi-platform index")
        for tag, release in KIND_RELEASES.items()},
}

# Images the lab no longer uses because they would not pull (or could not be shown to), and why.
REPLACED: dict[str, str] = {
    "calico/star-probe:v0.1.0": "2016 build (projectcalico/star Makefile: `docker build -t calico/star-probe`, "
                                "single platform); no published source gives its manifest media type; "
                                "stand-in hashicorp/http-echo (scenarios/stars.py)",
    "calico/star-collect:v0.1.0": "as calico/star-probe:v0.1.0; stand-in hashicorp/http-echo",
}


def images_in(objects: list[dict]) -> set[str]:
    """Every container image of the Pods and pod templates among ``objects``."""
    out: set[str] = set()
    for obj in objects:
        spec = obj.get("spec", {})
        pod = spec.get("template", {}).get("spec", spec) if obj.get("kind") != "Pod" else spec
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            out.add(c["image"])
    return out


def lab_images() -> dict[str, set[str]]:
    """image -> where the lab uses it."""
    settings = load_settings({"operatorCidr": "198.51.100.7/32"})
    used: dict[str, set[str]] = {}
    for ns in k8s.TEST_NAMESPACES:
        for image in images_in([k8s.curl_pod(ns)]):
            used.setdefault(image, set()).add("egress test pods")
    for name, pack in PACKS.items():
        for image in images_in(pack.workloads(Context(settings, "203.0.113.20"))):
            used.setdefault(image, set()).add(f"scenario {name}")
    for tag, release in KIND_RELEASES.items():
        used.setdefault(release.node_image, set()).add(f"kind {tag} node")
    return used


@pytest.mark.parametrize("image", sorted(lab_images()))
def test_every_image_the_lab_runs_was_checked_and_is_not_schema_1(image):
    where = ", ".join(sorted(lab_images()[image]))
    assert image not in REPLACED, f"{image} ({where}) was replaced: {REPLACED.get(image)}"
    assert image in IMAGES, f"{image} ({where}): no manifest media type on record in IMAGES"
    media_type, source = IMAGES[image]
    assert media_type not in SCHEMA_1 and source, (image, media_type)


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_every_image_is_pinned(image):
    """A tag that can move would make the recorded media type meaningless: a version tag or a digest."""
    name, _, ref = image.rpartition("@") if "@" in image else image.rpartition(":")
    assert name and ref and ref != "latest", image


def test_the_table_lists_no_image_the_lab_no_longer_runs():
    assert set(IMAGES) == set(lab_images())
