"""User-data scripts: shell-clean, and carrying what each host needs."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from model import network, proxy, userdata
from model.settings import load_settings
from tests import validation

KIND, PROXY = "203.0.113.10", "203.0.113.20"
SETTINGS = load_settings({"operatorCidr": "198.51.100.7/32", "proxyPort": "3130"})


def _scripts():
    return {
        "kind": userdata.kind_host_user_data(SETTINGS, KIND, PROXY),
        "proxy": userdata.proxy_host_user_data(SETTINGS, KIND),
        "remote-steps": "#!/bin/bash\n" + userdata.ready_command() + "\n"
                        + userdata.kubeconfig_command(KIND) + "\n",
    }


def _shellcheck():
    return validation.shellcheck()


@pytest.mark.parametrize("host", ["kind", "proxy", "remote-steps"])
def test_scripts_are_shellcheck_clean_and_parse(host, tmp_path):
    path = tmp_path / f"{host}.sh"
    path.write_text(_scripts()[host])
    check = subprocess.run([_shellcheck(), "-s", "bash", "-S", "style", str(path)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0


def _heredoc(script: str, path: str) -> str:
    start = script.index(f"cat > {path} <<'LAB_EOF'\n") + len(f"cat > {path} <<'LAB_EOF'\n")
    return script[start:script.index("\nLAB_EOF", start)]


def test_kind_config_has_no_cni_and_the_eip_in_the_api_certificate():
    script = _scripts()["kind"]
    cfg = yaml.safe_load(_heredoc(script, f"{userdata.LAB_DIR}/kind-config.yaml"))
    assert cfg["networking"]["disableDefaultCNI"] is True
    assert cfg["networking"]["kubeProxyMode"] == "none"
    assert cfg["networking"]["apiServerPort"] == 6443
    assert cfg["networking"]["apiServerAddress"] == "0.0.0.0"  # reachable on the EIP via the ENI
    assert "kubeadmConfigPatches" not in cfg  # a merge patch would replace kind's own SANs
    (patch,) = cfg["kubeadmConfigPatchesJSON6902"]
    # empty group and version: matches the ClusterConfiguration of any kubeadm API version kind
    # generates (tests/unit/test_kind_patches.py emulates each accepted release)
    assert (patch["group"], patch["version"], patch["kind"]) == ("", "", "ClusterConfiguration")
    assert yaml.safe_load(patch["patch"]) == [
        {"op": "add", "path": "/apiServer/certSANs/-", "value": KIND},
        {"op": "add", "path": "/apiServer/certSANs/-", "value": "127.0.0.1"}]
    assert "kind create cluster --config" in script


def test_kind_host_raises_inotify_limits_and_installs_its_tools():
    script = _scripts()["kind"]
    sysctl = _heredoc(script, "/etc/sysctl.d/90-kind-inotify.conf")
    assert "fs.inotify.max_user_instances = 8192" in sysctl
    assert "fs.inotify.max_user_watches = 524288" in sysctl
    assert "install -y -q docker.io curl ca-certificates" in script
    assert f"/releases/download/{SETTINGS.kind_version}/kind-linux-amd64" in script
    assert "/bin/linux/amd64/kubectl" in script
    assert script.rstrip().splitlines()[-2] == f"touch {userdata.READY_MARKER}"


def test_kind_host_fetches_through_the_proxy_so_a_locked_first_boot_works():
    script = _scripts()["kind"]
    url = f"http://{PROXY}:3130"
    assert f"HTTPS_PROXY={url}" in script  # curl, kind (and through kind, containerd)
    assert f'Acquire::http::Proxy "{url}";' in _heredoc(script, "/etc/apt/apt.conf.d/95cilium-egress-lab-proxy")
    dropin = _heredoc(script, "/etc/systemd/system/docker.service.d/http-proxy.conf")
    assert f'"HTTPS_PROXY={url}"' in dropin
    no_proxy = userdata.no_proxy().split(",")
    for direct in (network.KIND_POD_SUBNET, network.KIND_SERVICE_SUBNET, "169.254.169.254", "localhost"):
        assert direct in no_proxy
    # it waits for the proxy before the first download
    assert script.index(f"--proxy {url} https://dl.k8s.io/") < script.index("apt-get")


def test_proxy_host_serves_only_the_kind_host_and_only_allowed_destinations():
    script = _scripts()["proxy"]
    conf = _heredoc(script, "/etc/squid/squid.conf")
    lines = conf.splitlines()
    assert "http_port 3130" in lines
    assert f"acl lab_clients src {KIND}/32" in lines
    assert "acl tunnel_ports port 80 443" in lines  # Envoy CONNECTs to port 80 as well
    # loopback, link-local (metadata), private (the VPC) refused before any allow
    forbidden = next(ln for ln in lines if ln.startswith("acl forbidden_dst dst "))
    for net in ("127.0.0.0/8", "169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"):
        assert net in forbidden.split()
    allows = [ln for ln in lines if ln.startswith("http_access allow")]
    assert lines.index("http_access deny forbidden_dst") < lines.index(allows[0])
    assert allows == ["http_access allow allowed_names", "http_access allow bootstrap_names",
                      "http_access allow address_target plain_port"]
    assert lines.index("http_access deny all") > lines.index(allows[-1])
    assert r"acl allowed_names dstdom_regex -n -i ^[-a-z0-9_]*\.roche\.com$" in lines
    assert ".quay.io" in next(ln for ln in lines if ln.startswith("acl bootstrap_names dstdomain -n "))
    assert "squid -k parse" in script and "systemctl restart squid" in script


def test_squid_accepts_the_generated_config(tmp_path):
    squid = shutil.which("squid") or shutil.which("squid", path="/usr/sbin")
    if squid is None:
        pytest.skip("squid not installed (apt-get install squid)")
    conf = proxy.squid_conf(3130, [f"{KIND}/32"], SETTINGS.allowed_domains, SETTINGS.bootstrap_domains,
                            access_log=str(tmp_path / "access.log"),
                            cache_log=str(tmp_path / "cache.log"), pid_file=str(tmp_path / "pid"))
    (tmp_path / "squid.conf").write_text(conf)
    run = subprocess.run([squid, "-k", "parse", "-f", str(tmp_path / "squid.conf")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "FATAL" not in run.stderr and "ERROR" not in run.stderr and "WARNING" not in run.stderr, run.stderr


def test_connect_targets_reads_the_access_log_format():
    log = ("1763900000.123    210 198.18.0.2 TCP_TUNNEL/200 5123 CONNECT 198.18.1.10:443 - "
           "HIER_DIRECT/198.18.1.10 -\n"
           "1763900001.000      3 198.18.0.2 TCP_MISS/200 612 GET http://x/ - HIER_DIRECT/1.2.3.4 text/html\n")
    assert proxy.connect_targets(log) == ["198.18.1.10:443"]


def test_user_data_does_not_depend_on_the_lock():
    locked = load_settings({"operatorCidr": "198.51.100.7/32", "proxyPort": "3130",
                            "restrictEgress": "true"})
    assert userdata.kind_host_user_data(locked, KIND, PROXY) == _scripts()["kind"]
    assert userdata.proxy_host_user_data(locked, KIND) == _scripts()["proxy"]


def test_user_data_with_the_host_key_keeps_key_and_script_byte_for_byte():
    import email
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    script = _scripts()["kind"]
    data = userdata.with_host_key(script, key, "ssh-ed25519 AAAAC3Nza lab\n")
    assert data == userdata.with_host_key(script, key, "ssh-ed25519 AAAAC3Nza lab\n")  # stable: no replace
    assert data.startswith("Content-Type: multipart/mixed")  # how cloud-init recognises MIME user-data
    parts = [p for p in email.message_from_string(data).walk() if not p.is_multipart()]
    assert [p.get_content_type() for p in parts] == ["text/cloud-config", "text/x-shellscript"]
    config = yaml.safe_load(parts[0].get_payload())
    assert config["ssh_keys"] == {"ed25519_private": key, "ed25519_public": "ssh-ed25519 AAAAC3Nza lab"}
    assert parts[1].get_payload() == script
