"""The hosts' first boot, emulated: the real user-data scripts run as root in a private mount
namespace (tests/sandbox.py) against shims that behave like the upstream programs at boot time -
apt's dpkg lock held by unattended-upgrades, no network path until the Elastic IP is associated,
squid started by its package's postinst, a proxy that answers 403 until its real config is loaded,
kind's kubeconfig naming ``apiServerAddress`` - and the certificate SANs kind would generate."""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from model import mtls, userdata
from model.kind_releases import KIND_VERSIONS
from model.settings import DEFAULT_KIND_VERSION, load_settings
from tests import kind_patch, sandbox

ROOT = Path(__file__).resolve().parents[2]
KIND, PROXY = "203.0.113.10", "203.0.113.20"
SETTINGS = load_settings({"operatorCidr": "198.51.100.7/32", "proxyPort": "3130"})

# The proxy (squid with the lab's config, model/proxy.py) as the clients on the kind host see it: a
# host outside $FAKE/allowed (the bootstrapDomains the proxy was given; each entry covers the names
# below it, squid ``dstdomain .<entry>``) gets HTTP 403 to its CONNECT. Without that file every host passes.
FAKE_PROXY = r"""
proxy_refuses() {  # proxy_refuses HOST
  [ -f "$FAKE/allowed" ] || return 1
  local d
  while read -r d; do
    { [ "$1" = "$d" ] || [[ "$1" == *".$d" ]]; } && return 1
  done < "$FAKE/allowed"
  return 0
}
"""
# kind get kubeconfig: the server is https://<apiServerAddress>:<apiServerPort> of the kind config
# (kind pkg/cluster/internal/kubeconfig: the endpoint the node backend publishes), 0.0.0.0 here.
# kind create cluster pulls the node image with ``docker pull`` first (kind v0.30.0
# pkg/cluster/internal/providers/docker/images.go: 4 retries, then ``failed to pull image %q``; the
# exec error ``command "docker pull ..." failed with error: exit status 1`` and, from cmd/kind/app/main.go,
# ``Command Output: ...``). Docker's registry client is Go net/http: a CONNECT answered 403 becomes the
# status text as the error (transport.go ``errors.New(text)``), printed by url.Error as
# ``Get "<url>": Forbidden``. Anonymous pulls: token from auth.docker.io, manifests from
# registry-1.docker.io, blobs by redirect from Cloudflare R2 (model/registries.py).
_FAKE_KIND = FAKE_PROXY + r"""
echo "kind $*" >> "$EVENTS"
NODE="kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a"
R2="docker-images-prod.6aa30f8b08e16409b46e0173d6de2f56.r2.cloudflarestorage.com"
case "$1 $2" in
  "get clusters") exit 0 ;;
  "create cluster")
    for url in "https://auth.docker.io/token?scope=repository%3Akindest%2Fnode%3Apull&service=registry.docker.io" \
               "https://registry-1.docker.io/v2/kindest/node/manifests/sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a" \
               "https://$R2/registry-v2/docker/registry/v2/blobs/sha256/3e/3e1c/data?X-Amz-Algorithm=AWS4-HMAC-SHA256"; do
      host=${url#https://}; host=${host%%/*}
      if proxy_refuses "$host"; then
        echo "ERROR: failed to create cluster: failed to pull image \"$NODE\": command \"docker pull $NODE\" failed with error: exit status 1" >&2
        echo "Command Output: error pulling image configuration: download failed after attempts=6: Get \"$url\": Forbidden" >&2
        exit 1
      fi
    done
    while [ "$1" != --config ]; do shift; done; cp "$2" "$FAKE/kind-config.yaml"
    # the API server certificate's SANs, as the kind release would have kubeadm generate them
    SANS_PY -m tests.kind_patch "$(cat "$FAKE/kind-tag")" "$FAKE/kind-config.yaml" > "$FAKE/api-sans"; exit 0 ;;
  "delete cluster") exit 0 ;;
  "get kubeconfig") printf 'apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://0.0.0.0:6443\n  name: kind-egress-lab\n' ;;
esac
"""
FAKE_KIND = _FAKE_KIND.replace("SANS_PY", f"PYTHONPATH={ROOT} {sys.executable}")
# kubectl get --raw /readyz against the kind API: the server's certificate (the SANs above) is
# verified for the server name - the kubeconfig's server host, or --tls-server-name - as Go's
# crypto/x509 does (HostnameError: "x509: certificate is valid for ..., not <name>"), unless
# --insecure-skip-tls-verify, which the boot must never use.
FAKE_KUBECTL = r'''
echo "kubectl $*" >> "$EVENTS"
kubeconfig=""; name=""; prev=""
for a in "$@"; do
  case "$prev" in --kubeconfig) kubeconfig="$a" ;; --tls-server-name) name="$a" ;; esac
  [ "$a" = --insecure-skip-tls-verify ] && { echo "insecure" >> "$EVENTS"; }
  prev="$a"
done
[ -n "$name" ] || name=$(sed -nE 's#^ *server: https://([^:/]+).*#\1#p' "$kubeconfig" | head -n 1)
if grep -qx -- "$name" "$FAKE/api-sans"; then echo ok; exit 0; fi
echo "Unable to connect to the server: tls: failed to verify certificate: x509: certificate is valid for $(paste -sd, "$FAKE/api-sans" | sed 's/,/, /g'), not $name" >&2
exit 1
'''
# curl through the proxy host: squid answers 403 while it still runs its stock config, and the
# first requests fail outright while the instance has no network path yet. A CONNECT answered 403
# fails as curl does ("CONNECT tunnel failed, response 403", exit 56: lib/http_proxy.c). -L follows
# the redirects in $FAKE/redirects ("FROM-HOST TO-HOST" lines: GitHub's release downloads go to
# release-assets.githubusercontent.com). --write-out is rendered with the variables the boot uses
# (curl(1): %{stderr} sends the rest to stderr; url_effective is the last URL fetched, after
# redirects; http_code the origin's status, 000 without one; http_connect the proxy's CONNECT answer).
FAKE_CURL = FAKE_PROXY + r"""
echo "curl $*" >> "$EVENTS"
out=""; prev=""; url=""; wfmt=""
for a in "$@"; do
  case "$prev" in -o|-fsSLo) out="$a" ;; -w) wfmt="$a" ;; esac
  prev="$a"; url="$a"
done
host=${url#*://}; host=${host%%[/:]*}
if [ -f "$FAKE/redirects" ]; then
  to=$(awk -v h="$host" '$1 == h {print $2}' "$FAKE/redirects")
  [ -n "$to" ] && { url="https://$to/github-production-release-asset/${url##*/}"; host=$to; }
fi
write_out() {  # write_out HTTP_CODE CONNECT_CODE
  [ -n "$wfmt" ] || return 0
  local f=$wfmt fd=1
  case "$f" in '%{stderr}'*) f=${f#'%{stderr}'}; fd=2 ;; esac
  f=${f//'%{url_effective}'/$url}; f=${f//'%{http_code}'/$1}; f=${f//'%{http_connect}'/$2}
  printf '%b' "$f" >&"$fd"
}
n=$(cat "$FAKE/proxy-not-ready" 2>/dev/null || echo 0)
refused=0
if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$FAKE/proxy-not-ready"; refused=1; fi
proxy_refuses "$host" && refused=1
if [ "$refused" = 1 ]; then
  echo "curl: (56) CONNECT tunnel failed, response 403" >&2; write_out 000 403; exit 56
fi
case "$url" in
  *.sha256|*.sha256sum)  # a release's published checksum file
    sum=$(printf 'fake binary\n' | sha256sum | cut -d' ' -f1)
    [ -f "$FAKE/wrong-sums" ] && sum=0000000000000000000000000000000000000000000000000000000000000000
    printf '%s  %s\n' "$sum" "${url##*/}"; write_out 200 200; exit 0 ;;
esac
[ -n "$out" ] && [ "$out" != /dev/null ] && printf 'fake binary\n' > "$out"
write_out 200 200
exit 0
"""
# The digests the kind host would pin, for the fake binaries above (the real ones pin the releases).
FAKE_PINNED = {url: hashlib.sha256(b"fake binary\n").hexdigest() for url in userdata.PINNED_SHA256}
NO_SLEEP = 'echo "sleep $*" >> "$EVENTS"'


def _boot(script: str, tmp_path, extra_shims: dict[str, str], setup: str = "",
          kind_tag: str = DEFAULT_KIND_VERSION) -> sandbox.Run:
    sandbox.require_sandbox()
    (tmp_path / "fake").mkdir(parents=True, exist_ok=True)
    (tmp_path / "fake" / "kind-tag").write_text(kind_tag)
    shims = {"apt-get": sandbox.APT_GET, "systemctl": sandbox.SYSTEMCTL, "sleep": NO_SLEEP,
             "sysctl": sandbox.RECORD, "usermod": sandbox.RECORD, "kubectl": FAKE_KUBECTL, **extra_shims}
    # a boot as on a fresh image: unattended-upgrades holds the dpkg lock for a moment when the
    # first apt-get runs, and the first two `apt-get update`s find no network path yet
    setup = ('echo 2 > "$FAKE/offline-updates"\n'
             '(exec 9>"$FAKE/dpkg.lock"; flock 9; /bin/sleep 2) & /bin/sleep 0.2\n' + setup)
    return sandbox.run(script, shims, tmp_path, before=setup)


# --------------------------------------------------------------------------- certificates (kind)
# What kind puts into the API server certificate: tests/kind_patch.py, emulated from each accepted
# release's code (pkg/internal/patch/*.go, pkg/cluster/internal/kubeadm/config.go at the tag).


def _server_host(kubeconfig: str) -> str:
    return urlsplit(yaml.safe_load(kubeconfig)["clusters"][0]["cluster"]["server"]).hostname


@pytest.mark.parametrize("tag", KIND_VERSIONS)
def test_every_kubeconfig_server_is_in_the_api_certificate(tmp_path, tag):
    """Boot the kind host (emulated), then check the two kubeconfigs anyone uses - the host's own
    (/root/.kube/config: CRD wait, probes) and the operator's (stack output) - against the SANs
    kind would put into the API server certificate."""
    settings = load_settings({"operatorCidr": "198.51.100.7/32", "proxyPort": "3130", "kindVersion": tag})
    run = _boot(userdata.kind_host_user_data(settings, KIND, PROXY, FAKE_PINNED), tmp_path,
                {"kind": FAKE_KIND, "curl": FAKE_CURL}, kind_tag=tag)
    assert run.returncode == 0, run.output[-3000:]
    cluster = yaml.safe_load((tmp_path / "fake" / "kind-config.yaml").read_text())
    sans = set(kind_patch.api_cert_sans(tag, cluster))
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


@pytest.mark.parametrize("tag", KIND_VERSIONS)
def test_the_boot_ends_with_a_tls_verified_api_request_for_loopback_and_the_eip(tmp_path, tag):
    settings = load_settings({"operatorCidr": "198.51.100.7/32", "proxyPort": "3130", "kindVersion": tag})
    run = _boot(userdata.kind_host_user_data(settings, KIND, PROXY, FAKE_PINNED), tmp_path,
                {"kind": FAKE_KIND, "curl": FAKE_CURL}, kind_tag=tag)
    assert run.returncode == 0, run.output[-3000:]
    checks = [e for e in run.events if e.startswith("kubectl ")]
    assert checks == ["kubectl --kubeconfig /root/.kube/config get --raw /readyz",
                      f"kubectl --kubeconfig /root/.kube/config --tls-server-name {KIND} get --raw /readyz"]
    assert "insecure" not in run.events
    assert "API certificate verified for 127.0.0.1" in run.output
    assert f"API certificate verified for {KIND}" in run.output
    # the checks come after the cluster and before the ready marker
    assert run.events.index(checks[0]) > next(i for i, e in enumerate(run.events) if e.startswith("kind create"))
    assert run.output.index(f"API certificate verified for {KIND}") < run.output.index("kind host ready")


def test_a_san_missing_from_the_api_certificate_fails_the_boot_naming_it(tmp_path, monkeypatch):
    """Issue 19's defect: the certSANs patch as it was (group kubeadm.k8s.io, version "") matches no
    document in kind v0.30.0, so neither the EIP nor 127.0.0.1 is in the certificate."""
    good = userdata.kind_cluster_config

    def as_before(api_address):
        cfg = good(api_address)
        cfg["kubeadmConfigPatchesJSON6902"][0]["group"] = "kubeadm.k8s.io"
        return cfg
    monkeypatch.setattr(userdata, "kind_cluster_config", as_before)
    run = _boot(userdata.kind_host_user_data(SETTINGS, KIND, PROXY, FAKE_PINNED), tmp_path,
                {"kind": FAKE_KIND, "curl": FAKE_CURL})
    assert run.returncode != 0
    assert "API CERTIFICATE CHECK FAILED: https://127.0.0.1:6443 is not verified" in run.output
    assert "x509: certificate is valid for localhost, 0.0.0.0, not 127.0.0.1" in run.output
    assert not (run.upper / "var" / "upper" / "lib" / "cilium-egress-lab" / "setup-complete").exists()


# --------------------------------------------------------------------------- refused downloads (issue 19)
R2 = "docker-images-prod.6aa30f8b08e16409b46e0173d6de2f56.r2.cloudflarestorage.com"
# bootstrapDomains' default before issue 19: Docker Hub's anonymous blob hosts missing
DEFAULTS_BEFORE_19 = ("archive.ubuntu.com", "security.ubuntu.com", "github.com", "objects.githubusercontent.com",
                      "release-assets.githubusercontent.com", "dl.k8s.io", "docker.io",
                      "production.cloudflare.docker.com", "quay.io")


def _proxy_allows(tmp_path, domains, redirects: str = "github.com release-assets.githubusercontent.com\n"):
    (tmp_path / "fake").mkdir(parents=True, exist_ok=True)
    (tmp_path / "fake" / "allowed").write_text("\n".join(domains) + "\n")
    (tmp_path / "fake" / "redirects").write_text(redirects)


def _failure_pulumi_shows(run: sandbox.Run, tmp_path) -> str:
    """The stderr of the first remote step (userdata.ready_command) on this host after its boot:
    what ``pulumi up`` prints when the boot did not finish."""
    bin_dir = tmp_path / "rbin"
    bin_dir.mkdir()
    for name, body in {"cloud-init": "exit 0", "sudo": 'exec "$@"'}.items():
        (bin_dir / name).write_text("#!/bin/bash\n" + body)
        (bin_dir / name).chmod(0o755)
    log = run.upper / "var" / "upper" / "log" / "cilium-egress-lab.log"
    command = (userdata.ready_command().replace(userdata.BOOT_LOG, str(log))
               .replace(userdata.READY_MARKER, str(tmp_path / "no-marker")))
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert done.returncode != 0
    return done.stderr


def test_the_default_bootstrap_domains_let_the_whole_boot_through_the_proxy(tmp_path):
    _proxy_allows(tmp_path, SETTINGS.bootstrap_domains)
    run = _boot(userdata.kind_host_user_data(SETTINGS, KIND, PROXY, FAKE_PINNED), tmp_path,
                {"kind": FAKE_KIND, "curl": FAKE_CURL})
    assert run.returncode == 0, run.output[-3000:]
    assert "REFUSED" not in run.output
    assert "cilium-egress-lab: fetch https://release-assets.githubusercontent.com/" in run.output


def test_a_docker_hub_blob_host_the_proxy_refuses_is_named_with_the_config_key(tmp_path):
    """The defaults before issue 19 lacked Docker Hub's anonymous blob host: the kindest/node pull
    fails at the proxy, and both the boot log and what pulumi up shows name the host and the key."""
    settings = load_settings({"operatorCidr": "198.51.100.7/32", "proxyPort": "3130",
                              "bootstrapDomains": list(DEFAULTS_BEFORE_19)})
    _proxy_allows(tmp_path, settings.bootstrap_domains)
    run = _boot(userdata.kind_host_user_data(settings, KIND, PROXY, FAKE_PINNED), tmp_path,
                {"kind": FAKE_KIND, "curl": FAKE_CURL})
    assert run.returncode != 0
    named = f"REFUSED BY THE PROXY (HTTP 403): {R2} is not in bootstrapDomains"
    assert named in run.output, run.output[-3000:]
    assert "pulumi config set bootstrapDomains" in run.output
    shown = _failure_pulumi_shows(run, tmp_path)
    assert named in shown and "bootstrapDomains" in shown
    assert not any(e.startswith("kubectl ") for e in run.events)  # stopped at the cluster


def test_a_refused_redirect_target_is_named_not_the_url_the_boot_asked_for(tmp_path):
    allowed = [d for d in SETTINGS.bootstrap_domains if d != "release-assets.githubusercontent.com"]
    _proxy_allows(tmp_path, allowed)
    run = _boot(userdata.kind_host_user_data(SETTINGS, KIND, PROXY, FAKE_PINNED), tmp_path,
                {"kind": FAKE_KIND, "curl": FAKE_CURL})
    assert run.returncode != 0
    assert ("REFUSED BY THE PROXY (HTTP 403): release-assets.githubusercontent.com is not in bootstrapDomains"
            in run.output), run.output[-3000:]
    assert "REFUSED BY THE PROXY (HTTP 403): github.com " not in run.output
    assert "release-assets.githubusercontent.com is not in bootstrapDomains" in _failure_pulumi_shows(run, tmp_path)


def test_a_proxy_that_never_passes_the_first_request_names_the_host(tmp_path):
    allowed = [d for d in SETTINGS.bootstrap_domains if d != "dl.k8s.io"]
    _proxy_allows(tmp_path, allowed)
    script = userdata.kind_host_user_data(SETTINGS, KIND, PROXY, FAKE_PINNED).replace(
        "$(seq 1 120)", "$(seq 1 3)")  # the real wait is 120 tries; three show the same
    run = _boot(script, tmp_path, {"kind": FAKE_KIND, "curl": FAKE_CURL})
    assert run.returncode != 0
    assert "never passed a request" in run.output
    assert "REFUSED BY THE PROXY (HTTP 403): dl.k8s.io is not in bootstrapDomains" in run.output


# apt through the proxy (http:// sources, plain GET): squid's 403 comes back as the response, and apt
# reports "Err:N <uri>" / "E: Failed to fetch <uri>  403  Forbidden [IP: <proxy> <port>]" (apt-pkg
# acquire-item.cc "Failed to fetch %s  %s"). The EC2 images' mirror is <region>.ec2.archive.ubuntu.com.
APT_BEHIND_PROXY = FAKE_PROXY + r"""
if [[ " $* " == *" update "* ]] && proxy_refuses eu-central-1.ec2.archive.ubuntu.com; then
  echo "apt-get $*" >> "$EVENTS"
  echo "Err:1 http://eu-central-1.ec2.archive.ubuntu.com/ubuntu noble InRelease"
  echo "  403  Forbidden [IP: 203.0.113.20 3130]"
  echo "E: Failed to fetch http://eu-central-1.ec2.archive.ubuntu.com/ubuntu/dists/noble/InRelease  403  Forbidden [IP: 203.0.113.20 3130]" >&2
  exit 100
fi
""" + sandbox.APT_GET


def test_a_refused_apt_mirror_is_named(tmp_path):
    _proxy_allows(tmp_path, [d for d in SETTINGS.bootstrap_domains if d != "archive.ubuntu.com"])
    run = _boot(userdata.kind_host_user_data(SETTINGS, KIND, PROXY, FAKE_PINNED), tmp_path,
                {"kind": FAKE_KIND, "curl": FAKE_CURL, "apt-get": APT_BEHIND_PROXY})
    assert run.returncode != 0
    assert ("REFUSED BY THE PROXY (HTTP 403): eu-central-1.ec2.archive.ubuntu.com is not in bootstrapDomains"
            in run.output), run.output[-2000:]


def test_the_kind_hosts_user_data_does_not_depend_on_bootstrap_domains():
    """Only the proxy's config carries bootstrapDomains: changing it must not replace the kind host."""
    other = load_settings({"operatorCidr": "198.51.100.7/32", "proxyPort": "3130",
                           "bootstrapDomains": [*SETTINGS.bootstrap_domains, "registry.k8s.io"]})
    assert userdata.kind_host_user_data(other, KIND, PROXY) == userdata.kind_host_user_data(SETTINGS, KIND, PROXY)


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
                {"kind": FAKE_KIND, "curl": FAKE_CURL}, kind_tag="v0.29.0")
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
    sans = kind_patch.api_cert_sans("v0.30.0", defaulted)
    assert urlsplit(server).hostname in sans and set(sans) == {"localhost", "127.0.0.1"}
