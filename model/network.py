"""Address plan of the lab (from the original Terraform demo, seed 000)."""
VPC_CIDR = "10.0.0.0/16"
PUBLIC_SUBNET_CIDR = "10.0.100.0/24"
ANYWHERE = "0.0.0.0/0"

# kind's defaults; Cilium runs with ipam.mode=kubernetes so pods get addresses from POD_SUBNET.
KIND_POD_SUBNET = "10.244.0.0/16"
KIND_SERVICE_SUBNET = "10.96.0.0/12"
KIND_DOCKER_SUBNET = "172.18.0.0/16"  # the "kind" docker network
KUBE_API_PORT = 6443
# A two-cluster pack on aws (model/mesh_aws.py): the second kind cluster's API on the kind host's next
# port; both only from the operator (model/security_groups.py, guardrails ADMIN_PORTS).
MESH_API_PORTS = (KUBE_API_PORT, KUBE_API_PORT + 1)
SSH_PORT = 22
SSH_USER = "ubuntu"
# IMDSv2 only (http_tokens required), and its PUT answer at most this many network hops: 1 reaches the
# host itself, not a container on it (kind's node, the pods). AWS FSBP EC2.8; the policy pack checks it.
IMDS_HOP_LIMIT = 1

# Ubuntu 24.04 (noble) amd64 on gp3, published by Canonical.
UBUNTU_OWNER = "099720109477"
UBUNTU_NAME_FILTER = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"


def host_cidr(ip: str) -> str:
    """``203.0.113.7`` -> ``203.0.113.7/32``."""
    import ipaddress
    return f"{ipaddress.IPv4Address(ip)}/32"


# VPC flow logs (AWS FSBP EC2.6): rejected traffic, to CloudWatch Logs, kept a week.
FLOW_LOG_TRAFFIC = "REJECT"
FLOW_LOG_RETENTION_DAYS = 7


def flow_log_assume_role_policy() -> str:
    """Trust policy: only the VPC flow logs service may assume the role (AWS VPC user guide,
    "Publish flow logs to CloudWatch Logs", IAM role for publishing)."""
    import json
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "vpc-flow-logs.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def flow_log_role_policy(log_group_arn: str) -> str:
    """What the flow-log service may do: write to this one log group (same user guide page)."""
    import json
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups",
                   "logs:DescribeLogStreams"],
        "Resource": [log_group_arn, f"{log_group_arn}:*"]}]})
