"""The reaper against moto's EC2 mock: real boto3 calls, expired and live resources side by side."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from components.aws import fleet_tags
from fleet import reaper

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def make_fleet(session: Any, stack: str, expires_at: str, run_id: str | None = None) -> dict[str, str]:
    """What a stack creates on AWS, tagged as components/aws.py tags it."""
    ec2 = session.client("ec2", region_name=REGION)
    tags = [{"Key": k, "Value": v} for k, v in fleet_tags(stack, run_id or stack, expires_at).items()]
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    group = ec2.create_security_group(GroupName=f"sg-{stack}", Description="k8s-footprint",
                                      TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])
    key = ec2.create_key_pair(KeyName=f"key-{stack}", TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags}])
    inst = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                             SecurityGroupIds=[group["GroupId"]],
                             TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                 *tags, {"Key": "k8s-footprint:cell", "Value": "x86_64-k3s-1"}]}])
    return {"instance": inst["Instances"][0]["InstanceId"], "group": group["GroupId"], "key": key["KeyPairId"]}


def state(session: Any, instance_id: str) -> str:
    ec2 = session.client("ec2", region_name=REGION)
    return str(ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"])


def groups(session: Any) -> set[str]:
    ec2 = session.client("ec2", region_name=REGION)
    return {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}


def keys(session: Any) -> set[str]:
    return {k["KeyPairId"] for k in session.client("ec2", region_name=REGION).describe_key_pairs()["KeyPairs"]}


def test_dry_run_lists_only_expired_resources_and_deletes_nothing(aws: Any,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    old = make_fleet(aws, "ci-1", "2026-11-22T08:00:00Z")
    live = make_fleet(aws, "ci-2", "2026-11-22T15:00:00Z")
    assert reaper.main(["--regions", REGION, "--live-stacks", "ci-1", "ci-2"], session=aws, now=NOW) == 0
    out = capsys.readouterr().out
    for resource_id in old.values():
        assert f" {resource_id} (stack ci-1): expired at 2026-11-22T08:00:00Z" in out
    assert not any(resource_id in out for resource_id in live.values())
    assert "3 resource(s) would be reaped" in out
    assert state(aws, old["instance"]) == "running" and old["group"] in groups(aws) and old["key"] in keys(aws)


def test_delete_removes_expired_and_orphaned_fleets_in_order_and_leaves_live_ones(
        aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    old = make_fleet(aws, "ci-1", "2026-11-22T08:00:00Z")
    orphan = make_fleet(aws, "gone", "2026-11-22T15:00:00Z")
    live = make_fleet(aws, "ci-2", "2026-11-22T15:00:00Z")
    untagged = aws.client("ec2", region_name=REGION).run_instances(
        ImageId=aws.client("ec2", region_name=REGION).describe_images(Owners=["amazon"])["Images"][0]["ImageId"],
        MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    code = reaper.main(["--regions", REGION, "--live-stacks", "ci-1", "ci-2", "--delete", "--wait-seconds", "30"],
                       session=aws, now=NOW)
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "stack 'gone' no longer exists" in out
    for doomed in (old, orphan):
        assert state(aws, doomed["instance"]) == "terminated"
        assert doomed["group"] not in groups(aws) and doomed["key"] not in keys(aws)
    assert state(aws, live["instance"]) == "running" and live["group"] in groups(aws) and live["key"] in keys(aws)
    assert state(aws, untagged) == "running"
    assert out.index("terminated") < out.index("deleted security-group")


def test_missing_expiry_is_reaped_and_says_why() -> None:
    assert reaper.reason_to_reap({"k8s-footprint:stack": "s"}, NOW, None) == \
        "no readable k8s-footprint:expires-at tag (None)"
    assert reaper.reason_to_reap({"k8s-footprint:expires-at": "2026-11-22T13:00:00Z"}, NOW, None) is None


def test_without_live_stacks_or_cli_only_expiry_counts(aws: Any, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("fleet.reaper.shutil.which", lambda _: None)
    make_fleet(aws, "whatever", "2026-11-22T15:00:00Z")
    assert reaper.main(["--regions", REGION], session=aws, now=NOW) == 0
    captured = capsys.readouterr()
    assert "reaping by expiry only" in captured.err and "nothing to reap" in captured.out


def test_a_run_whose_state_is_gone_is_reaped_by_run_id_before_it_expires(
        aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # A cancelled CI job: its state went with the runner, its fleet expires in three hours.
    monkeypatch.setattr("fleet.reaper.shutil.which", lambda _: None)
    cancelled = make_fleet(aws, "k8sf-gh42-1", "2026-11-22T15:00:00Z", run_id="gh42-1")
    other = make_fleet(aws, "k8sf-gh43-1", "2026-11-22T15:00:00Z", run_id="gh43-1")
    code = reaper.main(["--regions", REGION, "--run-id", "gh42-1", "--delete", "--wait-seconds", "30"],
                       session=aws, now=NOW)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "reaping by run id and expiry only" in captured.err
    assert f"reap {REGION} instance {cancelled['instance']} (stack k8sf-gh42-1): run id gh42-1" in captured.out
    assert state(aws, cancelled["instance"]) == "terminated"
    assert cancelled["group"] not in groups(aws) and cancelled["key"] not in keys(aws)
    assert state(aws, other["instance"]) == "running" and other["group"] in groups(aws) and other["key"] in keys(aws)


def test_live_stacks_come_from_the_projects_backend_not_the_shells(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    def stack_ls(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        seen.append(kw["env"])
        return subprocess.CompletedProcess(argv, 0, '[{"name": "organization/k8s-footprint/dev"}]', "")

    monkeypatch.setattr("fleet.reaper.shutil.which", lambda _: "/usr/bin/pulumi")
    monkeypatch.setattr("fleet.reaper.subprocess.run", stack_ls)
    assert reaper.project_backend({}) == f"file://{reaper.ROOT / '.pulumi-state'}"
    assert reaper.project_backend({"PULUMI_BACKEND_URL": "s3://bucket"}) == "s3://bucket"
    assert reaper.live_stacks_from_pulumi(f"file://{tmp_path}") == {"dev"}
    assert seen[0]["PULUMI_BACKEND_URL"] == f"file://{tmp_path}"
    # No state at all (a fresh CI job) means unknown, not "no stack is live".
    assert reaper.live_stacks_from_pulumi(f"file://{tmp_path / 'missing'}") is None
    assert len(seen) == 1
