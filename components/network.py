"""Network: a VPC with one public subnet, an internet gateway and its route (no NAT); the VPC's
default security group managed with no rules (AWS FSBP EC2.2) and, if enabled, flow logs of
rejected traffic to CloudWatch Logs (EC2.6)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from model import network


@dataclass
class NetworkArgs:
    cidr: str
    public_subnet_cidr: str
    tags: dict[str, str]
    flow_logs: bool = True


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    internet_gateway: aws.ec2.InternetGateway
    route_table_association: aws.ec2.RouteTableAssociation  # hosts boot after their route exists
    flow_log_group: pulumi.Output[str] | None = None         # the flow logs' CloudWatch log group

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tag = lambda role: {**args.tags, "Name": f"{name}-{role}"}  # noqa: E731
        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags=tag("vpc"), opts=child)
        self.internet_gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=tag("igw"), opts=child)
        subnet = aws.ec2.Subnet(f"{name}-public", vpc_id=vpc.id, cidr_block=args.public_subnet_cidr,
                                map_public_ip_on_launch=False, tags=tag("public"), opts=child)
        table = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, tags=tag("public-rt"),
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0",
                                                gateway_id=self.internet_gateway.id)],
            opts=child)
        self.route_table_association = aws.ec2.RouteTableAssociation(
            f"{name}-public-rta", subnet_id=subnet.id, route_table_id=table.id, opts=child)
        # EC2.2: take over the default group and leave it without rules (nothing can use it)
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, tags=tag("default-sg"), opts=child)
        if args.flow_logs:
            self._flow_logs(name, vpc.id, tag, child)
        self.vpc_id = vpc.id
        self.subnet_id = subnet.id
        self.register_outputs({"vpc_id": self.vpc_id, "subnet_id": self.subnet_id})

    def _flow_logs(self, name, vpc_id, tag, child) -> None:
        """EC2.6: rejected traffic of the VPC to a log group kept a week, written by a role only the
        flow-log service can assume, allowed to write only that group (model/network.py)."""
        group = aws.cloudwatch.LogGroup(f"{name}-flow-logs", retention_in_days=network.FLOW_LOG_RETENTION_DAYS,
                                        tags=tag("flow-logs"), opts=child)
        role = aws.iam.Role(f"{name}-flow-logs-role", assume_role_policy=network.flow_log_assume_role_policy(),
                            tags=tag("flow-logs-role"), opts=child)
        aws.iam.RolePolicy(f"{name}-flow-logs-policy", role=role.id,
                           policy=group.arn.apply(network.flow_log_role_policy), opts=child)
        aws.ec2.FlowLog(f"{name}-flow-log", vpc_id=vpc_id, traffic_type=network.FLOW_LOG_TRAFFIC,
                        log_destination_type="cloud-watch-logs", log_destination=group.arn,
                        iam_role_arn=role.arn, tags=tag("flow-log"), opts=child)
        self.flow_log_group = group.name
