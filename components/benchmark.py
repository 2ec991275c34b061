"""Run the workload benchmark on a bootstrapped instance and keep its JSON result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_command import remote

from components.host import Host
from components.results import parse_result


@dataclass(frozen=True)
class WorkloadBenchmarkArgs:
    cell: str
    host: Host
    command: str
    after: Sequence[pulumi.Resource]
    triggers: Sequence[str] = field(default_factory=tuple)
    deleted_with: pulumi.Resource | None = None
    # Replaced whenever one of these is (the machine, or a host's bootstrap): a new install is
    # measured again.
    replace_with: Sequence[pulumi.Resource] = field(default_factory=tuple)


class WorkloadBenchmark(pulumi.ComponentResource):
    result: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: WorkloadBenchmarkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("k8s-footprint:index:WorkloadBenchmark", name, None, opts)
        self.command = remote.Command(
            f"{name}-benchmark",
            connection=args.host.connection(),
            create=args.command,
            triggers=list(args.triggers),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after), deleted_with=args.deleted_with,
                                        replace_with=list(args.replace_with)),
        )
        cell = args.cell
        # A distro that failed, ran out of memory or lost its API is a result with a status; only
        # output that is no result at all (the kit never ran) fails the update.
        self.result = self.command.stdout.apply(lambda out: parse_result(out, cell))
        self.register_outputs({"result": self.result})
