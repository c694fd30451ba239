"""Network: a VPC with one public subnet, an internet gateway and its route (no NAT)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class NetworkArgs:
    cidr: str
    public_subnet_cidr: str
    tags: dict[str, str]


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    internet_gateway: aws.ec2.InternetGateway
    route_table_association: aws.ec2.RouteTableAssociation  # hosts boot after their route exists

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
        self.vpc_id = vpc.id
        self.subnet_id = subnet.id
        self.register_outputs({"vpc_id": self.vpc_id, "subnet_id": self.subnet_id})
