"""Issue 20, "the proxy never reaches the host it runs on", on the real squid (Debian's, run with
``model.proxy.squid_conf`` in the lab's proxy namespace; topology in netlab.py).

A name the allow-list matches resolves (squid's hosts file, inside the lab only) to an IPv6 form that
leads back to the proxy host: ``::`` (Linux delivers the unspecified address to the host itself),
``::1``, the IPv4-mapped loopback and metadata addresses, the IPv4-compatible metadata address and
the metadata address behind the NAT64 prefixes ``64:ff9b::/96`` and ``64:ff9b:1::/48``. Each has a
live service behind it (the proxy's own origin server answers on that address, first checked from
inside the proxy namespace), so only squid's refusal stops the request: from its legitimate client,
the node, squid answers 403 and logs ``TCP_DENIED/403`` for every one, plain GET and CONNECT, in
both lock states. The allowed name still works, and so does port 80 of a public address: the IPv6
entries do not swallow IPv4 (squid holds IPv4 as ``::ffff:a.b.c.d``, ``model/proxy.py`` says why
that range is never listed).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

import cilium_verdicts as policy
from model.probes import REFUSED
from model.proxy import FORBIDDEN_DESTINATIONS

from . import netlab
from .netlab import ALLOWED_IP, CONTROL_IP, HOST_FORMS, NODE, NODE_IP, PROXY, PROXY_IP

LOCK_STATES = pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])


def _squid(lines: list[str]) -> list[tuple[str, str, str]]:
    """(result/status, method, URL) of squid's ``lab``-format access-log lines."""
    return [(f[3], f[5], f[6]) for f in (ln.split() for ln in lines) if len(f) > 6]


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def test_every_host_form_has_a_live_service_on_the_proxy_host(lab):
    """Without squid's refusal each form would be answered: the proxy's own origin server serves
    every one of them (curl from inside the proxy namespace, straight to the address)."""
    for prefix, (address, what) in HOST_FORMS.items():
        p = lab.exec(PROXY, "curl", "-sS", "-m", "3", f"http://{_url_host(address)}/", check=False)
        assert p.returncode == 0 and p.stdout.startswith("local="), (prefix, what, p.stdout, p.stderr)


@LOCK_STATES
def test_squid_refuses_every_form_of_the_proxy_host(lab, locked):
    lab.set_lock(locked)
    names = netlab.host_form_names(lab.settings)
    proxy = ("-x", f"http://{PROXY_IP}:{lab.settings.proxy_port}")
    cases = [(name, f"http://{name}/", (), "GET", f"http://{name}/") for name in names]
    cases += [(name, f"https://{name}/", (), "CONNECT", f"{name}:443") for name in names]
    squid_at = lab.log_offset(lab.squid_log)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda c: lab.curl_info(NODE, c[1], *proxy, *c[2]), cases))
    for (name, url, _, method, _), (obs, _, info) in zip(cases, got):
        if method == "CONNECT":
            assert (obs.curl_exit, info.get("http_connect")) == (56, 403), (url, names[name], obs)
            assert obs.outcome == REFUSED, url
        else:
            assert (obs.curl_exit, obs.http_code) == (0, "403"), (url, names[name], obs)
            assert obs.outcome == policy.L7_DENY, url
    expected = {(method, squid_url) for *_, method, squid_url in cases}
    lines = lab.wait_log(lab.squid_log, squid_at, lambda ls: expected <= {(m, u) for _, m, u in _squid(ls)})
    assert {(m, u) for status, m, u in _squid(lines) if status == "TCP_DENIED/403"} == expected, lines
    assert {ln.split()[2] for ln in lines} == {NODE_IP}, lines
    # ...while IPv4 destinations are not swallowed by the IPv6 entries: the allowed name tunnels,
    # port 80 of a public address is fetched
    obs, body = lab.curl(NODE, lab.settings.probe_url, *proxy)
    assert obs.outcome == policy.ALLOW and f"local={ALLOWED_IP}:443" in body, (obs, body)
    obs, body = lab.curl(NODE, f"http://{CONTROL_IP}/", *proxy)
    assert obs.outcome == policy.ALLOW and f"local={CONTROL_IP}:80" in body, (obs, body)


def test_the_lab_forms_are_the_ranges_the_model_refuses():
    """Each form lies in a refused range of model/proxy.py - the IPv4-mapped ones in the IPv4 range
    of the address they map (squid matches them as IPv4)."""
    import ipaddress
    nets = [ipaddress.ip_network(n) for n in FORBIDDEN_DESTINATIONS]
    for address, _ in HOST_FORMS.values():
        a = ipaddress.ip_address(address)
        a = a.ipv4_mapped or a
        assert any(a.version == n.version and a in n for n in nets), address


ODD_SPELLINGS = ["0177.0.0.1", "2130706433", "0x7f000001", "127.1", "0251.0376.0251.0376", "2852039166"]


def test_odd_spellings_of_the_hosts_addresses_are_refused_too(lab):
    """What settings refuse (model/addresses.py) is what curl and squid make of it: each odd spelling
    of loopback or the metadata address reaches squid as the address curl reads, and squid refuses it."""
    from model.addresses import as_curl_reads_it
    proxy = ("-x", f"http://{PROXY_IP}:{lab.settings.proxy_port}")
    squid_at = lab.log_offset(lab.squid_log)
    expected = set()
    for host in ODD_SPELLINGS:
        obs, _ = lab.curl(NODE, f"http://{host}/", *proxy)
        assert (obs.curl_exit, obs.http_code) == (0, "403"), (host, obs)
        expected.add(("GET", f"http://{as_curl_reads_it(host)}/"))
    lines = lab.wait_log(lab.squid_log, squid_at, lambda ls: expected <= {(m, u) for _, m, u in _squid(ls)})
    assert {(m, u) for status, m, u in _squid(lines) if status == "TCP_DENIED/403"} == expected, lines
