"""The default bootstrapDomains against the hosts the boot and the image pulls really reach, as the
registries document them (quoted below), and quay.io's in-region S3 redirect."""
from __future__ import annotations

import pytest

from model import registries
from model.proxy import squid_conf
from model.settings import DEFAULT_BOOTSTRAP_DOMAINS, SettingsError, load_settings
from scenarios import PACKS, Context

BASE = {"operatorCidr": "198.51.100.7/32"}

# Docker docs, "Allowlist for Docker Desktop" (docker/docs content/manuals/desktop/setup/allow-list.md,
# after PR #25122): "https://registry-1.docker.io | Docker Pull/Push", "https://auth.docker.io |
# Authentication", "https://production.cloudflare.docker.com | Docker Pull/Push",
# "https://production.cloudfront.docker.com | Docker Pull/Push", "https://docker-images-prod.
# 6aa30f8b08e16409b46e0173d6de2f56.r2.cloudflarestorage.com | Docker Pull/Push (Personal plan / Anonymous)".
DOCKER_HUB = ("registry-1.docker.io", "auth.docker.io", "production.cloudflare.docker.com",
              "production.cloudfront.docker.com",
              "docker-images-prod.6aa30f8b08e16409b46e0173d6de2f56.r2.cloudflarestorage.com")
# Red Hat KB 7001746 "Firewall changes for container image pulls": "allow outbound TCP connections (ports
# 80 and 443) to these hostnames: cdn.quay.io, cdn01.quay.io, cdn02.quay.io, cdn03.quay.io".
QUAY = ("quay.io", "cdn.quay.io", "cdn01.quay.io", "cdn02.quay.io", "cdn03.quay.io")
# The boot's own downloads and their redirects (model/registries.py names each source).
BOOT = ("eu-central-1.ec2.archive.ubuntu.com", "security.ubuntu.com", "github.com",
        "release-assets.githubusercontent.com", "objects.githubusercontent.com", "dl.k8s.io", "cdn.dl.k8s.io")


@pytest.mark.parametrize("host", DOCKER_HUB + QUAY + BOOT)
def test_default_bootstrap_domains_let_every_documented_host_through(host):
    assert registries.covered(DEFAULT_BOOTSTRAP_DOMAINS, host), host
    # and the proxy's config carries the entry that covers it (squid dstdomain ".entry")
    conf = squid_conf(3128, ["203.0.113.10/32"], ["*.roche.com"], DEFAULT_BOOTSTRAP_DOMAINS)
    line = next(ln for ln in conf.splitlines() if ln.startswith("acl bootstrap_names dstdomain -n "))
    entries = [e.lstrip(".") for e in line.split()[4:]]
    assert registries.covered(entries, host)


def test_default_bootstrap_domains_pass_the_settings_validation_and_do_not_overlap():
    s = load_settings(BASE)
    assert s.bootstrap_domains == DEFAULT_BOOTSTRAP_DOMAINS
    for d in DEFAULT_BOOTSTRAP_DOMAINS:  # squid warns about a dstdomain entry below another one
        assert not registries.covered([o for o in DEFAULT_BOOTSTRAP_DOMAINS if o != d], d), d


def test_paid_plan_and_s3_hosts_are_not_opened_wholesale():
    assert not registries.covered(DEFAULT_BOOTSTRAP_DOMAINS, "amazonaws.com")
    assert not registries.covered(DEFAULT_BOOTSTRAP_DOMAINS, registries.QUAY_IN_REGION_HOST)
    assert not registries.covered(DEFAULT_BOOTSTRAP_DOMAINS, "other-bucket.r2.cloudflarestorage.com")


def _images() -> set[str]:
    from scenarios import k8s
    from tests.unit.test_images import images_in
    settings = load_settings(BASE)
    out = {c["image"] for c in k8s.curl_pod("x")["spec"]["containers"]}
    for pack in PACKS.values():
        out |= images_in(pack.workloads(Context(settings, "203.0.113.20")))
    return out


def _registry(image: str) -> str:
    first = image.split("/", 1)[0]
    return first if "/" in image and ("." in first or ":" in first) else "docker.io"


def test_every_scenario_image_comes_from_a_registry_the_defaults_cover():
    images = _images()
    assert images
    for image in images:
        registry = _registry(image)
        assert registry in ("docker.io", "quay.io"), image  # the origins model/registries.py documents
        assert registries.covered(DEFAULT_BOOTSTRAP_DOMAINS, "registry-1.docker.io" if registry == "docker.io"
                                  else registry), image


# ---- quay.io's storage region
def test_quays_storage_region_is_refused_naming_the_region_key_and_bootstrap_domains():
    with pytest.raises(SettingsError) as err:
        load_settings(BASE, aws_region="us-east-1")
    (line,) = err.value.errors
    assert line.startswith("aws:region: 'us-east-1'")
    assert "s3.us-east-1.amazonaws.com" in line and "bootstrapDomains" in line


def test_quays_storage_region_works_when_the_operator_allows_the_s3_host():
    s = load_settings({**BASE, "bootstrapDomains": [*DEFAULT_BOOTSTRAP_DOMAINS, "s3.us-east-1.amazonaws.com"]},
                      aws_region="us-east-1")
    assert registries.covered(s.bootstrap_domains, registries.QUAY_IN_REGION_HOST)


@pytest.mark.parametrize("region", [None, "eu-central-1", "us-east-2", "us-west-2"])
def test_other_regions_get_quays_cdn_and_need_nothing_more(region):
    assert load_settings(BASE, aws_region=region).bootstrap_domains == DEFAULT_BOOTSTRAP_DOMAINS


def test_the_program_refuses_quays_region_before_declaring_anything():
    from tests.unit.harness import run_program
    p = run_program({}, region="us-east-1")
    assert p.error is not None and "aws:region: 'us-east-1'" in str(p.error)
    assert not p.resources
