"""Run the workload benchmark on a bootstrapped instance and keep its JSON result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_command import remote

from components.host import Host
from components.results import parse_result, provenance_stamp, stamp


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
    # The program's part of the result's provenance: the kit's content hash (the command checks the
    # kit against it on the guest before it runs a line of it) and the machine asked for.
    kit_hash: str | None = None
    machine: Mapping[str, Any] | None = None


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
        cell, digest, machine = args.cell, args.kit_hash, args.machine
        # A distro that failed, ran out of memory or lost its API is a result with a status; output
        # that is no result at all is that cell's no_result (components/results.py:parse_result).
        self.result = self.command.stdout.apply(lambda out: stamp(parse_result(out, cell), digest, machine))
        # The component's outputs are kept in the state once they resolve (the engine's
        # SnapshotManager.RegisterResourceOutputs, pkg/backend/snapshot.go), so the recovery from a
        # failed update (fleet/recover.py) stamps the same provenance on the stdout it reads.
        self.register_outputs({"result": self.result, "provenance": provenance_stamp(digest, machine)})
