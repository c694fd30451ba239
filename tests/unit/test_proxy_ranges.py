"""model/proxy.py's refused destinations as squid must get them (issue 20). What squid does with
them is proved on the real squid in tests/dataplane/test_proxy_ranges_dataplane.py; this pins the
two squid facts found there: overlapping entries of one ``dst`` ACL are silently dropped, and
``::ffff:0:0/96`` matches every IPv4 destination."""
from __future__ import annotations

import ipaddress

import pytest

from model.proxy import FORBIDDEN_DESTINATIONS, check_forbidden, squid_conf


def _acl(conf: str) -> list[str]:
    line = next(ln for ln in conf.splitlines() if ln.startswith("acl forbidden_dst dst "))
    return line.split()[3:]


def test_the_refused_ranges_cover_every_way_back_to_the_host():
    acl = [ipaddress.ip_network(n) for n in _acl(squid_conf(3128, ["198.51.100.7/32"], ["*.roche.com"]))]
    for address in ("::", "::1", "::127.0.0.1", "::a9fe:a9fe", "64:ff9b::a9fe:a9fe", "64:ff9b:1::7f00:1",
                    "fd00::1", "fe80::1", "127.0.0.1", "169.254.169.254", "10.0.0.5"):
        a = ipaddress.ip_address(address)
        assert any(a.version == n.version and a in n for n in acl), address
    for public in ("203.0.113.10", "2001:db8::1", "93.184.215.14"):
        a = ipaddress.ip_address(public)
        assert not any(a.version == n.version and a in n for n in acl), public


def test_no_two_refused_ranges_overlap():
    assert check_forbidden(FORBIDDEN_DESTINATIONS) == list(FORBIDDEN_DESTINATIONS)


@pytest.mark.parametrize("forbidden,needle", [
    (("::1", "::/96"), "::1/128 and ::/96 overlap: squid would silently drop the second"),
    (("10.0.0.0/8", "10.1.0.0/16"), "10.0.0.0/8 and 10.1.0.0/16 overlap"),
    (("::ffff:0:0/96",), "matches against every IPv4 destination"),
    (("::ffff:127.0.0.0/104",), "overlaps the IPv4-mapped range"),
])
def test_a_list_squid_would_misread_is_refused(forbidden, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        squid_conf(3128, ["198.51.100.7/32"], ["*.roche.com"], forbidden=forbidden)
