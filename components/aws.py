"""AWS instances: 1 GiB t4g.micro (arm64) and t3.micro (x86_64), locked down by default."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.host import Host

# Canonical publishes the current Ubuntu 24.04 AMI per arch in a public SSM parameter.
AMI_PARAMETER = "/aws/service/canonical/ubuntu/server/24.04/stable/current/{arch}/hvm/ebs-gp3/ami-id"
AMI_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
AMI_USER = "ubuntu"
# Unlimited, as T3 and T4g default to, but explicit so an account-wide default can't change it:
# standard mode would throttle a busy cell to its 10 % baseline, and readiness waits and /readyz
# latency would then measure the credit balance, not the distro. components/cost.py prices it.
CPU_CREDITS = "unlimited"


# Tag keys whose later values must not update a resource in place.
EXPIRES_AT = "k8s-footprint:expires-at"
# The expiry is stamped when a resource is created, and it stays: ignoring it is what keeps every
# later `up` from updating every resource's tags (the value moves with the clock).
TAGS_IGNORED = (f'tags["{EXPIRES_AT}"]',)


class NoDefaultVpcError(RuntimeError):
    """The account has no default VPC in the region, which the fleet's instances are placed in."""


def default_vpc_id(parent: pulumi.Resource) -> str:
    """The default VPC's id, or an error that says how to get one.

    A security group or instance made without a VPC or subnet goes to the default VPC; without one,
    EC2 refuses the create late, with "VPCIdNotSpecified". Asking first fails at preview instead.
    """
    try:
        vpc = aws.ec2.get_vpc(default=True, opts=pulumi.InvokeOptions(parent=parent))
    except Exception as exc:
        raise NoDefaultVpcError(
            f"no default VPC found in this AWS region ({exc}); create one with `aws ec2 create-default-vpc`, "
            "or use another region (aws:region)") from None
    return str(vpc.id)


def fleet_tags(stack: str, run_id: str, expires_at: str, cell: str | None = None) -> dict[str, str]:
    """Tags on every AWS resource, so the reaper can find what a stack left behind."""
    tags = {
        "k8s-footprint:managed": "true",
        "k8s-footprint:stack": stack,
        "k8s-footprint:run-id": run_id,
        "k8s-footprint:expires-at": expires_at,
    }
    if cell:
        tags["k8s-footprint:cell"] = cell
    return tags


@dataclass(frozen=True)
class AwsAccessArgs:
    ssh_allowed_cidrs: Sequence[str]
    public_key: pulumi.Input[str]
    tags: Mapping[str, str]


class AwsAccess(pulumi.ComponentResource):
    """The fleet's key pair and security group: SSH from the allowed CIDRs only."""

    def __init__(self, name: str, args: AwsAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("k8s-footprint:index:AwsAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tagged = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(ignore_changes=list(TAGS_IGNORED)))
        self.key_pair = aws.ec2.KeyPair(f"{name}-key", public_key=args.public_key, tags=dict(args.tags),
                                        opts=tagged)
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-ssh",
            description="k8s-footprint: SSH from the configured CIDRs only",
            vpc_id=default_vpc_id(self),
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=22, to_port=22, cidr_blocks=list(args.ssh_allowed_cidrs),
                description="SSH from sshAllowedCidrs")],
            # A provider-made group has no egress at all; the guests must reach package mirrors.
            egress=[aws.ec2.SecurityGroupEgressArgs(
                protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"], ipv6_cidr_blocks=["::/0"],
                description="downloads: packages, distro installers, images")],
            tags=dict(args.tags),
            opts=tagged,
        )
        self.register_outputs({"keyName": self.key_pair.key_name, "securityGroupId": self.security_group.id})


@dataclass(frozen=True)
class AwsInstanceArgs:
    cell: str
    arch: str
    instance_type: str
    access: AwsAccess
    private_key: pulumi.Output[str]
    tags: Mapping[str, str]
    # Changes whenever the cell's commands or kit change: the cell then gets a fresh instance.
    replacement_trigger: str
    disk_gib: int = 20
    spot: bool = False
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)


class AwsInstance(pulumi.ComponentResource):
    def __init__(self, name: str, args: AwsInstanceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("k8s-footprint:index:AwsInstance", name, None, opts)
        ami = aws.ssm.get_parameter_output(name=AMI_PARAMETER.format(arch=AMI_ARCH[args.arch]),
                                           opts=pulumi.InvokeOutputOptions(parent=self))
        tags = {**args.tags, "Name": f"k8sf-{args.cell}"}
        # The AMI is read when the instance is created and then kept: Canonical moves the SSM
        # parameter with every image release, and `ami` is ForceNew, so following it would replace
        # every instance mid-study. A new cell, or a replaced one, takes the AMI current then.
        market = None
        if args.spot:
            market = aws.ec2.InstanceInstanceMarketOptionsArgs(
                market_type="spot",
                spot_options=aws.ec2.InstanceInstanceMarketOptionsSpotOptionsArgs(
                    instance_interruption_behavior="terminate", spot_instance_type="one-time"))
        self.instance = aws.ec2.Instance(
            f"{name}-vm",
            # The provider answers the parameter's `value` as a secret, and the SDK then marks the whole
            # invoke result secret (pulumi 3.272.0 runtime/invoke.py:381-397). An AMI id is public:
            # insecure_value, unsecreted, keeps it readable in the state and the outputs.
            ami=pulumi.Output.unsecret(ami.insecure_value),
            instance_type=args.instance_type,
            key_name=args.access.key_pair.key_name,
            vpc_security_group_ids=[args.access.security_group.id],
            associate_public_ip_address=True,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_type="gp3", volume_size=args.disk_gib, encrypted=True, delete_on_termination=True),
            instance_market_options=market,
            credit_specification=aws.ec2.InstanceCreditSpecificationArgs(cpu_credits=CPU_CREDITS),
            tags=tags,
            volume_tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=list(args.after), replacement_trigger=args.replacement_trigger,
                ignore_changes=["ami", *TAGS_IGNORED, f'volumeTags["{EXPIRES_AT}"]']),
        )
        self.host = Host(address=self.instance.public_ip, user=AMI_USER, arch=args.arch,
                         private_key=args.private_key, dial_error_limit=40)
        self.register_outputs({"address": self.instance.public_ip, "instanceType": args.instance_type,
                               "arch": args.arch})
