"""Settings: defaults, Pulumi.yaml agreement, and every bad value failing before any resource."""
from __future__ import annotations

import pathlib

import pytest
import yaml

from model.settings import (
    CONFIG_KEYS,
    REPLACED_KEYS,
    SettingsError,
    load_settings,
    pulumi_config_block,
)

from .harness import OPERATOR_IP, run_program

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_defaults_are_the_documented_ones():
    s = load_settings({}, public_ip_lookup=lambda: "198.51.100.7")
    assert s.restrict_egress is False
    assert s.env_name == "demo"
    assert s.operator_cidr == "198.51.100.7/32"
    assert s.allowed_domains == ("*.roche.com",)
    assert s.proxy_port == 3128
    assert s.root_volume_gb == 30
    assert s.cilium_version == "1.18.10"
    assert s.kind_version.startswith("v")
    assert s.name("kind") == "kind-demo"


def test_pulumi_yaml_declares_every_key_with_the_model_default_and_type():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert declared == pulumi_config_block()
    # a map cannot be declared (Pulumi.yaml config types: string, integer, boolean, array)
    assert [k.name for k in CONFIG_KEYS if k.name not in declared] == ["stages"]
    for key in (k for k in CONFIG_KEYS if k.type != "object"):
        assert declared[key.name]["type"] == key.type, key.name
        assert declared[key.name]["default"] == key.default, key.name
        assert declared[key.name]["description"], key.name


def test_pulumi_yaml_uses_a_local_file_backend():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["backend"]["url"].startswith("file://")
    assert project["runtime"]["name"] == "python"


def test_values_arrive_as_strings_from_pulumi_config():
    s = load_settings({"restrictEgress": "TRUE", "proxyPort": "8080", "rootVolumeGb": "64",
                       "allowedDomains": '["*.Example.com", "api.example.org"]',
                       "probeUrl": "https://www.example.com/x", "controlUrl": "http://other.test",
                       "operatorCidr": "198.51.0.0/16", "kindVersion": "0.29.0",
                       "ciliumVersion": "v1.18.10"})
    assert (s.restrict_egress, s.proxy_port, s.root_volume_gb) == (True, 8080, 64)
    assert s.allowed_domains == ("*.example.com", "api.example.org")
    assert s.operator_cidr == "198.51.0.0/16"
    assert (s.kind_version, s.cilium_version) == ("v0.29.0", "1.18.10")


def test_comma_separated_domains_are_accepted_for_the_render_cli():
    assert load_settings({"allowedDomains": "*.roche.com, www.example.org",
                          "operatorCidr": "198.51.100.0/24"}).allowed_domains == (
        "*.roche.com", "www.example.org")


# (key, bad value, text the message must contain besides the key)
BAD = [
    ("restrictEgress", "yes", "true or false"),
    ("envName", "Demo", "[a-z0-9-]"),
    ("envName", "a" * 21, "1-20"),
    ("envName", "", "1-20"),
    ("operatorCidr", "0.0.0.0/0", "/16 or narrower"),
    ("operatorCidr", "10.0.0.1/8", "IPv4 CIDR"),
    ("operatorCidr", "myhost", "IPv4 CIDR"),
    ("operatorCidr", "2001:db8::/32", "IPv4 CIDR"),
    ("allowedDomains", [], "non-empty"),
    ("allowedDomains", ["*"], "wildcard"),
    ("allowedDomains", ["roche..com"], "DNS names"),
    ("allowedDomains", ["*.roche.com", "*.roche.com"], "listed twice"),
    ("allowedDomains", "[not json", "non-empty list"),
    ("proxyPort", 0, "1 to 65535"),
    ("proxyPort", 70000, "1 to 65535"),
    ("proxyPort", "http", "1 to 65535"),
    ("kindInstanceType", "", "instance type"),
    ("proxyInstanceType", "small", "instance type"),
    ("rootVolumeGb", 4, "8 to 1024"),
    ("rootVolumeGb", 4096, "8 to 1024"),
    ("kindVersion", "latest", "v0.30.0"),
    ("ciliumVersion", "1.18", "1.18.10"),
    ("probeUrl", "https://www.google.com", "matches no allowedDomains"),
    ("probeUrl", "ftp://www.roche.com", "http(s) URL"),
    ("controlUrl", "https://shop.roche.com", "would not be a control"),
    ("strictVerification", "maybe", "true or false"),
    ("mtlsInjection", "true", "replaced by the key scenarios"),
    ("scenarios", ["egress", "bogus"], "not a scenario"),
    ("scenarios", [], "non-empty list"),
    ("scenarios", ["hoot51", "hoot51"], "listed twice"),
    ("stages", {"stars": "open"}, "is not in scenarios"),
    ("stages", {"egress": "nope"}, "accepted: open, proxy-policy"),
    ("stages", "[1]", "a map"),
    ("mtlsClientCn", "bad/cn", "[A-Za-z0-9 .-]"),
    ("mtlsServerName", "*.lab.internal", "a DNS name"),
    ("pkiCertValidityHours", 9000, "at most pkiCaValidityHours"),
    ("pkiCaValidityHours", 12, "24 to 87600"),
    # issue 12: operator exposure and strict input
    ("operatorCidr", "0.0.0.0/1", "/16 or narrower"),
    ("operatorCidr", "203.0.0.0/15", "/16 or narrower"),
    ("operatorCidr", "10.20.0.0/16", "public"),
    ("operatorCidr", "127.0.0.1/32", "public"),
    ("operatorCidr", "169.254.169.254/32", "public"),
    ("operatorCidr", "100.64.0.1/32", "public"),
    ("envName", "demo\n", "[a-z0-9-]"),
    ("ciliumVersion", "1.18.10\n", "1.18.10"),
    ("ciliumVersion", "\uff11.18.10", "1.18.10"),
    ("kindVersion", "v0.30.0\n", "v0.30.0"),
    # issue 19: only the releases whose patch matching the tests emulate (model/kind_releases.py)
    ("kindVersion", "v0.27.0", "one of v0.28.0, v0.29.0, v0.30.0, v0.31.0"),
    ("kindVersion", "v0.32.0", "one of v0.28.0, v0.29.0, v0.30.0, v0.31.0"),
    ("proxyPort", "\uff13128", "1 to 65535"),
    ("rootVolumeGb", "3\u0660", "8 to 1024"),
    ("kindInstanceType", "m7i.large\n", "instance type"),
    ("probeUrl", "https://www.roche.com:99999/", "port"),
    ("probeUrl", "https://user:pw@www.roche.com/", "no user"),
    ("probeUrl", "https://www.roche.com/a b", "http(s) URL"),
    ("probeUrl", "https://www.roche.com/\n", "http(s) URL"),
    ("controlUrl", "https://www.ex\u0430mple.com/", "http(s) URL"),
    ("allowedDomains", ["*.roche.com\n"], "DNS names"),
    ("mtlsServerName", "mtls.lab.internal\n", "a DNS name"),
    ("bootstrapDomains", ["github.com", "*.quay.io"], "DNS names"),
    ("flowLogs", "maybe", "true or false"),
    ("amiId", "ami-123", "AMI id"),
    ("amiId", "latest", "'auto'"),
    # issue 20: a domain is a name; a URL's host is no address the proxy refuses, in any spelling
    ("allowedDomains", ["203.0.113.10"], "not a DNS name"),
    ("allowedDomains", ["*.roche.com", "*.1.10"], "an address, not a DNS name"),
    ("allowedDomains", ["www.roche.0x7f"], "not a DNS name"),
    ("bootstrapDomains", ["github.com", "198.51.100.7"], "not a DNS name"),
    ("bootstrapDomains", ["quay.1-2"], "not a DNS name"),
    ("mtlsServerName", "10.0.0.5", "not a DNS name"),
    ("controlUrl", "http://169.254.169.254/latest/meta-data/", "169.254.0.0/16, a destination the proxy refuses"),
    ("controlUrl", "http://127.0.0.1/", "127.0.0.0/8"),
    ("controlUrl", "http://10.0.0.5/", "10.0.0.0/8"),
    ("controlUrl", "http://192.168.1.1:8080/", "192.168.0.0/16"),
    ("controlUrl", "http://172.31.0.2/", "172.16.0.0/12"),
    ("controlUrl", "http://100.64.0.1/", "100.64.0.0/10"),
    ("controlUrl", "http://0.0.0.0/", "0.0.0.0/8"),
    ("controlUrl", "http://0177.0.0.1/", "the IPv4 address 127.0.0.1 spelt another way"),
    ("controlUrl", "http://2130706433/", "127.0.0.1 spelt another way"),
    ("controlUrl", "http://0x7f000001/", "127.0.0.1 spelt another way"),
    ("controlUrl", "http://0x7f.1/", "127.0.0.1 spelt another way"),
    ("controlUrl", "http://127.1/", "127.0.0.1 spelt another way"),
    ("controlUrl", "http://0xa9fea9fe/", "169.254.169.254 spelt another way"),
    ("controlUrl", "http://169.254.43518/", "169.254.169.254 spelt another way"),
    ("controlUrl", "http://198.51.100.020/", "the IPv4 address 198.51.100.16 spelt"),  # octal 020 = 16 to curl
    ("controlUrl", "http://www.example.123/", "not one"),
    ("controlUrl", "http://[::1]/", "IPv6"),
    ("controlUrl", "http://[::ffff:169.254.169.254]/", "IPv6"),
    ("probeUrl", "http://0177.0.0.1/", "127.0.0.1 spelt another way"),
    ("probeUrl", "https://127.0.0.1/", "127.0.0.0/8"),
    # issue 20: hostile input gets a named error, never a traceback
    ("allowedDomains", "[" * 1000, "nested too deeply"),
    ("bootstrapDomains", "[" * 2000, "nested too deeply"),
    ("scenarios", "[" * 1000, "nested too deeply"),
    ("stages", "[" * 1000, "nested too deeply"),
    ("probeUrl", "https://www.roche.com/" + "a" * 100_000, "longer than the limit of 2,048"),
    ("controlUrl", "https://www.example.com/?" + "q" * 2100, "longer than the limit of 2,048"),
    ("allowedDomains", ",".join(f"d{i}.example.org" for i in range(200)), "longer than the limit"),
    ("restrictEgress", " true", "true or false"),
    ("flowLogs", "false\n", "true or false"),
    ("proxyPort", "3128 ", "1 to 65535"),
    ("convergenceSeconds", "\t180", "0 (one attempt) to 900"),
    ("allowedDomains", " *.roche.com", "surrounding whitespace"),
    ("scenarios", "egress\n", "surrounding whitespace"),
    ("stages", ' {"egress": "open"}', "surrounding whitespace"),
]


@pytest.mark.parametrize("key,value,accepted", BAD, ids=[f"{k}={v!r}"[:40] for k, v, _ in BAD])
def test_bad_value_fails_before_any_resource(key, value, accepted):
    program = run_program({key: value})
    assert program.error is not None, f"{key}={value!r} was accepted"
    assert program.resources == [], "resources were declared before validation failed"
    message = str(program.error)
    line = next((ln for ln in message.splitlines() if ln.strip().startswith((f"- {key}:", f"- {key}."))), None)
    assert line is not None, message
    assert accepted in line, line
    shown = value[-1] if isinstance(value, list) and value else value
    if shown not in ("", []) and key not in REPLACED_KEYS and not isinstance(shown, dict):
        assert repr(shown)[1:10] in line, f"bad value not shown: {line}"


def test_all_errors_are_reported_together():
    with pytest.raises(SettingsError) as err:
        load_settings({"proxyPort": "0", "envName": "UPPER", "rootVolumeGb": "1", "bogusKey": "1"},
                      public_ip_lookup=lambda: OPERATOR_IP)
    keys = sorted(e.split(":")[0] for e in err.value.errors)
    assert keys == ["bogusKey", "envName", "proxyPort", "rootVolumeGb"]


def test_auto_operator_cidr_uses_the_lookup_once_and_explains_failure():
    calls = []
    s = load_settings({}, public_ip_lookup=lambda: calls.append(1) or "203.0.113.99\n")
    assert s.operator_cidr == "203.0.113.99/32" and calls == [1]

    def offline():
        raise TimeoutError("timed out")
    with pytest.raises(SettingsError) as err:
        load_settings({}, public_ip_lookup=offline)
    assert "operatorCidr" in str(err.value) and "pulumi config set operatorCidr" in str(err.value)
    with pytest.raises(SettingsError, match="operatorCidr"):
        load_settings({}, public_ip_lookup=lambda: "<html>captive portal</html>")


def test_auto_lookup_is_skipped_when_other_keys_are_wrong():
    def must_not_run():
        raise AssertionError("looked up the IP despite a bad config")
    with pytest.raises(SettingsError):
        load_settings({"proxyPort": "-1"}, public_ip_lookup=must_not_run)


def test_auto_lookup_failure_declares_nothing():
    from tests.unit import harness
    program = harness.run_program({}, public_ip="not-an-ip")
    assert program.error is not None and "operatorCidr" in str(program.error)
    assert program.resources == []


def test_a_misspelt_key_in_the_stack_fails_the_program_naming_the_valid_keys():
    """`pulumi config set proxyport 8080` (lower-case p) must not be silently ignored by `up`."""
    program = run_program({"proxyport": 8080})
    assert program.error is not None and program.resources == []
    line = next(ln for ln in str(program.error).splitlines() if "proxyport" in ln)
    assert "unknown key" in line and "proxyPort" in line and "restrictEgress" in line


# Echoed bad values are cut to a readable length (issue 11): ~60 characters of their repr, then "…".
ECHO_LIMIT = 60
# (raw settings, the character the long value is made of, the key whose error line echoes it)
LONG_CASES = [({k.name: "q" * 5000}, "q", k.name) for k in CONFIG_KEYS] + [
    ({"allowedDomains": ["q" * 5000]}, "q", "allowedDomains"),
    ({"allowedDomains": ["a.example.org", "q" * 5000 + ".example.org"]}, "q", "allowedDomains"),
    ({"operatorCidr": "10.0.0." + "9" * 5000 + "/32"}, "9", "operatorCidr"),  # ipaddress echoes it too
    ({"operatorCidr": "10.0.0.0/" + "9" * 5000}, "9", "operatorCidr"),
    ({"probeUrl": "https://" + ".".join(["q" * 60] * 80) + ".org/"}, "q", "probeUrl"),  # a cross check
    ({"allowedDomains": [f"q{i:03d}" + "q" * 50 + ".example.org" for i in range(26)]}, "q", "probeUrl"),  # < 2 KB
    ({"q" * 5000: "1"}, "q", "q" * 58),                                       # an unknown key
]


@pytest.mark.parametrize("raw,filler,key", LONG_CASES,
                         ids=[f"{k[:20]}-{i}" for i, (_, _, k) in enumerate(LONG_CASES)])
def test_echoed_values_are_cut_to_a_readable_length(raw, filler, key):
    with pytest.raises(SettingsError) as err:
        load_settings(raw, resolve_operator_cidr=False)
    message = str(err.value)
    assert any(ln.strip().startswith(f"- {key}") for ln in message.splitlines()), message[:2000]
    assert filler * (ECHO_LIMIT + 1) not in message, f"value echoed in full: {message[:300]}…"
    assert "…" in message
    assert all(len(ln) <= 500 for ln in message.splitlines()), max(message.splitlines(), key=len)[:600]


def test_short_values_are_echoed_whole():
    with pytest.raises(SettingsError) as err:
        load_settings({"proxyPort": "http", "envName": "x" * 58}, resolve_operator_cidr=False)
    assert "proxyPort: 'http' is not accepted" in str(err.value)
    assert f"envName: {'x' * 58!r} is not accepted" in str(err.value)  # 60 characters with quotes


@pytest.mark.parametrize("host", ["198.51.100.20", "93.184.215.14"])
def test_a_public_address_url_is_read_the_same_by_the_check_and_the_probe(host):
    """What the check accepts is what the probe uses: a control URL by (canonical, public) address is
    accepted, and the probe plan dials exactly that address, which the locked security group drops."""
    from model import probes
    from scenarios import Context
    s = load_settings({"controlUrl": f"http://{host}/", "restrictEgress": "true"}, resolve_operator_cidr=False)
    assert s.control_host == host
    plan = probes.plan("egress", Context(s, "203.0.113.20"))
    (control,) = [p for p in plan.probes if p.probe.name == "test-deny-control"]
    assert control.probe.traffic.to == f"world:{host}" and control.expected == "drop"
    assert f"directly to {host}:80" in " ".join(control.why)
