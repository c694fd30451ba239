"""Address plan of the lab (from the original Terraform demo, seed 000)."""
VPC_CIDR = "10.0.0.0/16"
PUBLIC_SUBNET_CIDR = "10.0.100.0/24"
ANYWHERE = "0.0.0.0/0"

# kind's defaults; Cilium runs with ipam.mode=kubernetes so pods get addresses from POD_SUBNET.
KIND_POD_SUBNET = "10.244.0.0/16"
KIND_SERVICE_SUBNET = "10.96.0.0/12"
KIND_DOCKER_SUBNET = "172.18.0.0/16"  # the "kind" docker network
KUBE_API_PORT = 6443
SSH_PORT = 22
SSH_USER = "ubuntu"

# Ubuntu 24.04 (noble) amd64 on gp3, published by Canonical.
UBUNTU_OWNER = "099720109477"
UBUNTU_NAME_FILTER = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"


def host_cidr(ip: str) -> str:
    """``203.0.113.7`` -> ``203.0.113.7/32``."""
    import ipaddress
    return f"{ipaddress.IPv4Address(ip)}/32"
