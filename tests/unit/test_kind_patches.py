"""The API server certificate kind asks kubeadm for, per accepted kind release, with the lab's own
kind config (model.userdata.kind_cluster_config) - emulated from each tag's code (tests/kind_patch.py
cites the files)."""
from __future__ import annotations

import pytest

from model import userdata
from model.kind_releases import KIND_RELEASES, KIND_VERSIONS
from model.settings import DEFAULT_KIND_VERSION, load_settings
from tests import kind_patch

EIP = "203.0.113.10"


def test_the_emulation_covers_exactly_the_accepted_releases():
    assert KIND_VERSIONS == kind_patch.TAGS
    assert DEFAULT_KIND_VERSION in KIND_VERSIONS


@pytest.mark.parametrize("tag", KIND_VERSIONS)
def test_the_lab_patch_adds_the_eip_and_loopback_to_the_certificate(tag):
    """kind <tag> generates kubeadm.k8s.io/v1beta3 for its default node image; the lab's JSON 6902
    patch must match that document, or the EIP (operator's kubeconfig) and 127.0.0.1 (on-host
    kubectl) are missing from the certificate and every client fails x509."""
    cluster = userdata.kind_cluster_config(EIP)
    assert kind_patch.cluster_configuration(tag, "0.0.0.0")["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    assert kind_patch.api_cert_sans(tag, cluster) == ["localhost", "0.0.0.0", EIP, "127.0.0.1"]


@pytest.mark.parametrize("tag", KIND_VERSIONS)
def test_every_accepted_release_is_accepted_by_settings(tag):
    assert load_settings({"operatorCidr": "198.51.100.7/32", "kindVersion": tag}).kind_version == tag
    assert KIND_RELEASES[tag].containerd.startswith("v2.")  # containerd 2: no schema-1 images


# ---- the emulation itself, against kind's own test case and the matching rule's edges
def test_emulation_reproduces_kinds_own_6902_test_case():
    """pkg/internal/patch/kubeyaml_test.go at v0.30.0: ``trivialPatch6902`` (group kubeadm.k8s.io,
    version v1beta2, ``add /apiServer/certSANs/- my-hostname``) applied to a v1beta2 ClusterConfiguration
    with ``certSANs: [localhost, "127.0.0.1"]`` gives ``[localhost, 127.0.0.1, my-hostname]``."""
    doc = {"apiVersion": "kubeadm.k8s.io/v1beta2", "kind": "ClusterConfiguration",
           "apiServer": {"certSANs": ["localhost", "127.0.0.1"]}}
    patch = {"group": "kubeadm.k8s.io", "version": "v1beta2", "kind": "ClusterConfiguration",
             "patch": "\n- op: add\n  path: /apiServer/certSANs/-\n  value: my-hostname"}
    out = kind_patch.kube_yaml("v0.30.0", doc, [], [patch])
    assert out["apiServer"]["certSANs"] == ["localhost", "127.0.0.1", "my-hostname"]


ADD = "- {op: add, path: /apiServer/certSANs/-, value: 198.51.100.1}\n"


@pytest.mark.parametrize("group,version,applies", [
    ("", "", True),                                  # apiVersion "": kind only
    ("kubeadm.k8s.io", "v1beta3", True),              # exactly the generated apiVersion
    ("kubeadm.k8s.io", "", False),                    # "kubeadm.k8s.io/" != "kubeadm.k8s.io/v1beta3"
    ("kubeadm.k8s.io", "v1beta4", False),             # v0.28-v0.31 never generate v1beta4
    ("", "v1beta3", False),                           # "v1beta3" != "kubeadm.k8s.io/v1beta3"
])
@pytest.mark.parametrize("tag", KIND_VERSIONS)
def test_a_6902_patch_applies_only_when_its_api_version_is_empty_or_equal(tag, group, version, applies):
    cluster = {"networking": {"apiServerAddress": "0.0.0.0"}, "kubeadmConfigPatchesJSON6902": [
        {"group": group, "version": version, "kind": "ClusterConfiguration", "patch": ADD}]}
    assert ("198.51.100.1" in kind_patch.api_cert_sans(tag, cluster)) is applies


def test_a_merge_patch_replaces_kinds_san_list():
    """RFC 7386 §2 (jsonpatch.MergePatch in resource.go): a list in a merge patch replaces the list."""
    cluster = {"networking": {"apiServerAddress": "0.0.0.0"},
               "kubeadmConfigPatches": ["kind: ClusterConfiguration\napiServer:\n  certSANs: [1.2.3.4]\n"]}
    assert kind_patch.api_cert_sans(DEFAULT_KIND_VERSION, cluster) == ["1.2.3.4"]
