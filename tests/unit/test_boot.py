"""The hosts' first boot, emulated: the real user-data scripts run as root in a private mount
namespace (tests/sandbox.py) against shims that behave like the upstream programs at boot time -
apt's dpkg lock held by unattended-upgrades, no network path until the Elastic IP is associated,
squid started by its package's postinst, a proxy that answers 403 until its real config is loaded,
kind's kubeconfig naming ``apiServerAddress`` - and the certificate SANs kind would generate."""
from __future__ import annotations

import hashlib
import re
import subprocess
from urllib.parse import urlsplit

import json_merge_patch
import jsonpatch
import pytest
import yaml

from model import mtls, userdata
from model.settings import load_settings
from tests import sandbox

KIND, PROXY = "203.0.113.10", "203.0.113.20"
SETTINGS = load_settings({"operatorCidr": "198.51.100.7/32", "proxyPort": "3130"})

# kind get kubeconfig: the server is https://<apiServerAddress>:<apiServerPort> of the kind config
# (kind pkg/cluster/internal/kubeconfig: the endpoint the node backend publishes), 0.0.0.0 here.
FAKE_KIND = r'''
echo "kind $*" >> "$EVENTS"
case "$1 $2" in
  "get clusters") exit 0 ;;
  "create cluster") while [ "$1" != --config ]; do shift; done; cp "$2" "$FAKE/kind-config.yaml"; exit 0 ;;
  "get kubeconfig") printf 'apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://0.0.0.0:6443\n  name: kind-egress-lab\n' ;;
esac
'''
# curl through the proxy host: squid answers 403 while it still runs its stock config, and the
# first requests fail outright while the instance has no network path yet.
FAKE_CURL = r'''
echo "curl $*" >> "$EVENTS"
n=$(cat "$FAKE/proxy-not-ready" 2>/dev/null || echo 0)
if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$FAKE/proxy-not-ready"; echo "curl: (22) The requested URL returned error: 403" >&2; exit 22; fi
out=""; prev=""; url=""
for a in "$@"; do { [ "$prev" = -o ] || [ "$prev" = -fsSLo ]; } && out="$a"; prev="$a"; url="$a"; done
case "$url" in
  *.sha256|*.sha256sum)  # a release's published checksum file
    sum=$(printf 'fake binary\n' | sha256sum | cut -d' ' -f1)
    [ -f "$FAKE/wrong-sums" ] && sum=0000000000000000000000000000000000000000000000000000000000000000
    printf '%s  %s\n' "$sum" "${url##*/}"; exit 0 ;;
esac
[ -n "$out" ] && [ "$out" != /dev/null ] && printf 'fake binary\n' > "$out"
exit 0
'''
# The digests the kind host would pin, for the fake binaries above (the real ones pin the releases).
FAKE_PINNED = {url: hashlib.sha256(b"fake binary\n").hexdigest() for url in userdata.PINNED_SHA256}
NO_SLEEP = 'echo "sleep $*" >> "$EVENTS"'


def _boot(script: str, tmp_path, extra_shims: dict[str, str], setup: str = "") -> sandbox.Run:
    sandbox.require_sandbox()
    shims = {"apt-get": sandbox.APT_GET, "systemctl": sandbox.SYSTEMCTL, "sleep": NO_SLEEP,
             "sysctl": sandbox.RECORD, "usermod": sandbox.RECORD, **extra_shims}
    # a boot as on a fresh image: unattended-upgrades holds the dpkg lock for a moment when the
    # first apt-get runs, and the first two `apt-get update`s find no network path yet
    setup = ('echo 2 > "$FAKE/offline-updates"\n'
             '(exec 9>"$FAKE/dpkg.lock"; flock 9; /bin/sleep 2) & /bin/sleep 0.2\n' + setup)
    return sandbox.run(script, shims, tmp_path, before=setup)


# --------------------------------------------------------------------------- certificates (kind)
def kind_cluster_configuration(api_server_address: str) -> dict:
    """The ClusterConfiguration kind generates (pkg/cluster/internal/kubeadm/config.go,
    ConfigTemplateBetaV3/V4): ``certSANs: [localhost, "{{.APIServerAddress}}"]``."""
    return {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
            "metadata": {"name": "config"}, "apiServer": {"certSANs": ["localhost", api_server_address]}}


def apply_kind_patches(doc: dict, cluster: dict) -> dict:
    """kind pkg/internal/patch/kubeyaml.go: every ``kubeadmConfigPatches`` entry whose kind (and
    apiVersion, if set) matches is applied as an RFC 7386 JSON *merge* patch (lists are replaced),
    then every matching ``kubeadmConfigPatchesJSON6902`` entry as an RFC 6902 patch (resource.go
    ``matches``: kind must match; group/version only if the patch sets them)."""
    group, version = doc["apiVersion"].split("/")
    for raw in cluster.get("kubeadmConfigPatches", []):
        patch = yaml.safe_load(raw)
        if patch.get("kind") == doc["kind"] and patch.get("apiVersion", doc["apiVersion"]) == doc["apiVersion"]:
            doc = json_merge_patch.merge(doc, patch)
    for p in cluster.get("kubeadmConfigPatchesJSON6902", []):
        if p["kind"] == doc["kind"] and p.get("group", group) in ("", group) and p.get("version") in ("", None, version):
            doc = jsonpatch.apply_patch(doc, yaml.safe_load(p["patch"]))
    return doc


def kubeadm_sans(cluster: dict) -> set[str]:
    cfg = kind_cluster_configuration(cluster["networking"]["apiServerAddress"])
    return set(apply_kind_patches(cfg, cluster)["apiServer"]["certSANs"])


def test_kind_merge_patch_emulation_replaces_lists_like_kind_does():
    """The emulation itself: a certSANs list in a merge patch replaces kind's list (RFC 7386 §2)."""
    cluster = {"networking": {"apiServerAddress": "0.0.0.0"},
               "kubeadmConfigPatches": ["kind: ClusterConfiguration\napiServer:\n  certSANs: [1.2.3.4]\n"]}
    assert kubeadm_sans(cluster) == {"1.2.3.4"}
    cluster = {"networking": {"apiServerAddress": "0.0.0.0"}, "kubeadmConfigPatchesJSON6902": [
        {"group": "kubeadm.k8s.io", "version": "", "kind": "ClusterConfiguration",
         "patch": "- {op: add, path: /apiServer/certSANs/-, value: 1.2.3.4}\n"}]}
    assert kubeadm_sans(cluster) == {"localhost", "0.0.0.0", "1.2.3.4"}


def _server_host(kubeconfig: str) -> str:
    return urlsplit(yaml.safe_load(kubeconfig)["clusters"][0]["cluster"]["server"]).hostname


def test_every_kubeconfig_server_is_in_the_api_certificate(tmp_path):
    """Boot the kind host (emulated), then check the two kubeconfigs anyone uses - the host's own
    (/root/.kube/config: CRD wait, probes) and the operator's (stack output) - against the SANs
    kind would put into the API server certificate."""
    run = _boot(userdata.kind_host_user_data(SETTINGS, KIND, PROXY, FAKE_PINNED), tmp_path,
                {"kind": FAKE_KIND, "curl": FAKE_CURL})
    assert run.returncode == 0, run.output[-3000:]
    cluster = yaml.safe_load((tmp_path / "fake" / "kind-config.yaml").read_text())
    sans = kubeadm_sans(cluster)
    assert _server_host(run.file("/root/.kube/config")) in sans, (run.file("/root/.kube/config"), sans)
    # the operator's kubeconfig: the same pipeline on the host, over SSH (sudo is a pass-through)
    bin_dir = tmp_path / "opbin"
    bin_dir.mkdir()
    for name, body in {"kind": FAKE_KIND, "sudo": 'exec "$@"'}.items():
        (bin_dir / name).write_text("#!/bin/bash\n" + body)
        (bin_dir / name).chmod(0o755)
    op = subprocess.run(["bash", "-c", userdata.kubeconfig_command(KIND)], capture_output=True, text=True,
                        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "EVENTS": "/dev/null", "FAKE": str(tmp_path)})
    assert op.returncode == 0, op.stderr
    assert _server_host(op.stdout) == KIND and KIND in sans


# --------------------------------------------------------------------------- kind host boot
def test_kind_host_waits_for_a_real_proxied_request_before_its_first_download(tmp_path):
    (tmp_path / "fake").mkdir(parents=True)
    (tmp_path / "fake" / "proxy-not-ready").write_text("3")  # 403s while squid runs the stock config
    run = _boot(userdata.kind_host_user_data(SETTINGS, KIND, PROXY, FAKE_PINNED), tmp_path,
                {"kind": FAKE_KIND, "curl": FAKE_CURL})
    assert run.returncode == 0, run.output[-3000:]
    curls = [i for i, e in enumerate(run.events) if e.startswith("curl ")]
    first_apt = next(i for i, e in enumerate(run.events) if e.startswith("apt-get "))
    # three refused requests, then the one that passed, all before apt or any download
    assert len([i for i in curls if i < first_apt]) == 4, run.events[:first_apt]
    assert all(f"http://{PROXY}:3130" in run.events[i] for i in curls[:4])
    assert "proxy" in run.output and "ready" in run.output  # a clear log line


def test_kind_host_boot_survives_the_dpkg_lock_and_a_late_network(tmp_path):
    run = _boot(userdata.kind_host_user_data(SETTINGS, KIND, PROXY, FAKE_PINNED), tmp_path,
                {"kind": FAKE_KIND, "curl": FAKE_CURL})
    assert run.returncode == 0, run.output[-3000:]
    assert "cilium-egress-lab: kind host ready" in run.output
    assert any("kind create cluster" in e for e in run.events)


# --------------------------------------------------------------------------- proxy host boot
def test_squid_never_starts_with_the_stock_config(tmp_path):
    run = _boot(userdata.proxy_host_user_data(SETTINGS, KIND), tmp_path, {"squid": sandbox.RECORD},
                setup="rm -rf /etc/squid")  # a fresh image: squid not installed yet
    assert run.returncode == 0, run.output[-3000:]
    starts = [e for e in run.events if e.startswith("squid started with:")]
    assert starts, run.events
    assert all("Generated by cilium-egress-lab" in s for s in starts), starts
    assert "http_port 3130" in run.file("/etc/squid/squid.conf")


def test_every_apt_call_waits_for_the_dpkg_lock_and_retries_downloads():
    scripts = {"kind": userdata.kind_host_user_data(SETTINGS, KIND, PROXY),
               "proxy": userdata.proxy_host_user_data(SETTINGS, KIND),
               "mtls-backend": mtls.backend_install_script(SETTINGS)}
    for name, script in scripts.items():
        calls = re.findall(r"apt-get[^\n]*", script)
        assert calls, name
        for call in calls:
            assert "DPkg::Lock::Timeout=" in call or call.startswith("apt-get() "), (name, call)
    kind = scripts["kind"]
    assert 'Acquire::Retries "5";' in kind
    downloads = re.findall(r"^fetch_verified (\S+) ", kind, re.M)
    assert len(downloads) == 2  # kind and kubectl, each checked against its SHA-256
    for curl in re.findall(r"retry 5 10 curl [^\n]*", kind):
        assert "--retry" in curl, curl


# --------------------------------------------------------------------------- verified downloads (issue 12)
def test_a_binary_that_does_not_match_its_pinned_digest_stops_the_boot(tmp_path):
    """The default versions are pinned to the releases' published SHA-256: a served binary that
    differs (here: anything but the real release) is not installed and the boot fails loudly."""
    run = _boot(userdata.kind_host_user_data(SETTINGS, KIND, PROXY), tmp_path, {"kind": FAKE_KIND, "curl": FAKE_CURL})
    assert run.returncode != 0
    assert "CHECKSUM MISMATCH for https://github.com/kubernetes-sigs/kind/releases/download/v0.30.0/" \
           "kind-linux-amd64: expected 517ab7fc89ddeed5fa65abf71530d90648d9638ef0c4cde22c2c11f8097b8889" in run.output
    assert not (run.upper / "usr" / "upper" / "local" / "bin" / "kind").exists()
    assert not any(e.startswith("kind ") for e in run.events)


@pytest.mark.parametrize("wrong", [False, True], ids=["matching-checksum-file", "wrong-checksum-file"])
def test_an_unpinned_version_is_checked_against_its_release_checksum_file(tmp_path, wrong):
    settings = load_settings({"operatorCidr": "198.51.100.7/32", "proxyPort": "3130", "kindVersion": "v0.29.0"})
    (tmp_path / "fake").mkdir(parents=True)
    if wrong:
        (tmp_path / "fake" / "wrong-sums").write_text("")
    run = _boot(userdata.kind_host_user_data(settings, KIND, PROXY, FAKE_PINNED), tmp_path,
                {"kind": FAKE_KIND, "curl": FAKE_CURL})
    fetched = [e for e in run.events if e.startswith("curl ") and e.endswith("kind-linux-amd64.sha256sum")]
    assert fetched, run.events
    if wrong:
        assert run.returncode != 0 and "CHECKSUM MISMATCH" in run.output
    else:
        assert run.returncode == 0, run.output[-2000:]
        assert "/usr/local/bin/kind verified" in run.output


def test_local_kind_config_api_server_certificate_names_the_kubeconfig_server():
    """platform local: kind's defaults (v0.30.0 pkg/apis/config/v1alpha4/default.go: apiServerAddress
    "127.0.0.1", a random port) and its kubeconfig (server https://<apiServerAddress>:<port>, the fake
    kind in tests/unit/fake_tools.py answers the same) - the certificate (kind's own SANs, no patch)
    names it."""
    from model import local
    cluster = yaml.safe_load(local.cluster_config_yaml("cilium-egress-lab.dev"))
    defaulted = {**cluster, "networking": {"apiServerAddress": "127.0.0.1", **cluster["networking"]}}
    server = "https://127.0.0.1:40123"
    assert urlsplit(server).hostname in kubeadm_sans(defaulted) == {"localhost", "127.0.0.1"}
