"""Every host the kind host's boot and its image pulls reach through the proxy, per origin, with
where the list comes from. ``DEFAULT_BOOTSTRAP_DOMAINS`` (config key ``bootstrapDomains``) is built
from it. squid matches each entry as ``dstdomain .<entry>``: the name and every name below it
(model/proxy.py), so an entry never repeats a name another entry already covers (squid warns about
overlapping ``dstdomain`` entries).

Pure data; nothing here reaches a registry.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    name: str                  # what the boot or an image reference names
    entries: tuple[str, ...]   # bootstrapDomains entries it needs
    reaches: str               # which hosts the downloads go to (redirects included)
    source: str                # where that list comes from


ORIGINS: tuple[Origin, ...] = (
    Origin("apt (Ubuntu archives)", ("archive.ubuntu.com", "security.ubuntu.com"),
           "<region>.ec2.archive.ubuntu.com (below archive.ubuntu.com) and security.ubuntu.com",
           "cloud-init's cloud.cfg package_mirrors for EC2 (http://%(ec2_region)s.ec2.archive.ubuntu.com/ubuntu/), "
           "Ubuntu's security pocket on security.ubuntu.com"),
    Origin("kind release (GitHub)", ("github.com", "objects.githubusercontent.com",
                                     "release-assets.githubusercontent.com"),
           "github.com/.../releases/download/... redirects to release-assets.githubusercontent.com "
           "(objects.githubusercontent.com before 2025)",
           "the redirect curl -L follows for a release asset (GitHub moved release assets from "
           "objects.githubusercontent.com to release-assets.githubusercontent.com in 2025)"),
    Origin("kubectl (dl.k8s.io)", ("dl.k8s.io",),
           "dl.k8s.io redirects to cdn.dl.k8s.io",
           "the redirect curl -L follows (kubernetes/k8s.io: dl.k8s.io is a redirector to cdn.dl.k8s.io)"),
    Origin("docker.io (Docker Hub: kindest/node, the scenarios' images)",
           ("docker.io", "production.cloudflare.docker.com", "production.cloudfront.docker.com",
            "docker-images-prod.6aa30f8b08e16409b46e0173d6de2f56.r2.cloudflarestorage.com"),
           "registry-1.docker.io (manifests) and auth.docker.io (anonymous token), both below docker.io; "
           "blobs by redirect to Cloudflare R2 docker-images-prod.6aa30f8b08e16409b46e0173d6de2f56"
           ".r2.cloudflarestorage.com (Personal plan / anonymous), production.cloudfront.docker.com and "
           "production.cloudflare.docker.com",
           "Docker docs 'Allowlist for Docker Desktop' (docker/docs content/manuals/desktop/setup/"
           "allow-list.md, as of docker/docs PR #25122: registry-1.docker.io, auth.docker.io, "
           "production.cloudflare.docker.com, production.cloudfront.docker.com, docker-images-prod."
           "6aa30f8b08e16409b46e0173d6de2f56.r2.cloudflarestorage.com 'Personal plan / Anonymous'); "
           "R2 blob URLs as in docker/hub-feedback#2442"),
    Origin("quay.io (Cilium's images)", ("quay.io",),
           "quay.io (manifests); blobs from its CDN cdn.quay.io, cdn01.quay.io, cdn02.quay.io, "
           "cdn03.quay.io (all below quay.io) - except for AWS clients in its storage bucket's region "
           "(QUAY_STORAGE_REGION), which get pre-signed S3 URLs (QUAY_IN_REGION_HOST)",
           "Red Hat KB 7001746 'Firewall changes for container image pulls' (cdn, cdn01-03.quay.io); "
           "quay/quay storage/cloud.py (CloudFrontedS3Storage.get_direct_download_url, "
           "is_in_network_request)"),
)

DEFAULT_BOOTSTRAP_DOMAINS: tuple[str, ...] = tuple(e for o in ORIGINS for e in o.entries)

# Not allowed by default, on purpose: ``production.cloudflare.docker.com`` is kept (the allow-list once
# marked it "Paid plans", now plain "Docker Pull/Push"); a JFrog knowledge-base note (2018, updated 2025)
# says Docker Hub sent AWS clients in a VPC to a ``docker-images-prod`` S3 bucket of their own region -
# from Docker Hub's S3 era; today's allow-list names Cloudflare R2 for anonymous pulls. Should a registry
# move its blobs again, the boot names the refused host and this key (model/boot_refusals.py).

# quay.io's blob storage (quay/quay storage/cloud.py at ffba0c70, 2026-08): CloudFrontedS3Storage hands an
# S3 pre-signed URL instead of a CDN one when ``is_in_network_request``: the client's IP resolves to AWS
# *and* to the bucket's region ("We only allow requests within the same region", quay/quay PR #1539).
# The URL comes from a boto3 S3 client with ``endpoint_url=https://s3.<region>.amazonaws.com`` (S3Storage
# with s3_region), which presigns path-style: https://s3.us-east-1.amazonaws.com/<bucket>/<key> (boto3/
# botocore 1.35.81 as quay pins them in requirements.txt; checked by presigning offline). quay.io's bucket
# region is us-east-1 (quay/quay PR #3666 review: "us-east-1 ... for the sake of Quay.io", and the S3
# endpoint returned to a pod in AWS "with the region in the hostname (s3.us-east-1.amazonaws.com)").
# That host serves every bucket in the region path-style, and CONNECT hides the path from the proxy, so
# the lab does not allow it by default: in that region the operator decides (model.settings checks it).
QUAY_STORAGE_REGION = "us-east-1"
QUAY_IN_REGION_HOST = "s3.us-east-1.amazonaws.com"


def covered(domains: tuple[str, ...] | list[str], host: str) -> bool:
    """Does a bootstrapDomains list let ``host`` through (squid ``dstdomain .<entry>``)?"""
    return any(host == d or host.endswith("." + d) for d in domains)


def region_problems(region: str | None, bootstrap_domains: tuple[str, ...]) -> list[str]:
    """Config errors for ``aws:region`` given ``bootstrapDomains`` (none when the region is unset)."""
    if region != QUAY_STORAGE_REGION or covered(bootstrap_domains, QUAY_IN_REGION_HOST):
        return []
    return [f"aws:region: {region!r} is quay.io's storage region: quay.io answers clients in AWS there with "
            f"pre-signed S3 URLs on {QUAY_IN_REGION_HOST} instead of its CDN, which the proxy refuses, so "
            f"Cilium's images would not pull. Use another region, or add {QUAY_IN_REGION_HOST} to "
            f"bootstrapDomains (it serves every S3 bucket in {region}, path-style: the proxy cannot tell "
            f"quay.io's from any other); accepted: any region but {region}, or {region} with "
            f"bootstrapDomains covering {QUAY_IN_REGION_HOST}"]
