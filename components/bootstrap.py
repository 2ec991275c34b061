"""Upload the guest kit and install one distro, waiting until it is really ready."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi_command import remote

from components.commands import KIT_DIR, CellCommands
from components.host import Host
from components.results import parse_bootstrap


@dataclass(frozen=True)
class DistroBootstrapArgs:
    cell: str
    host: Host
    commands: CellCommands
    kit_digest: str
    kit_dir: Path = KIT_DIR
    # For machines that outlive the stack (the hosts backend): uninstall the distro on destroy.
    uninstall_on_destroy: bool = False
    # The instance whose deletion makes this moot: no command runs against a machine being deleted.
    deleted_with: pulumi.Resource | None = None


class DistroBootstrap(pulumi.ComponentResource):
    result: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: DistroBootstrapArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("k8s-footprint:index:DistroBootstrap", name, None, opts)
        connection = args.host.connection()
        self.kit = remote.CopyToRemote(
            f"{name}-kit",
            connection=connection,
            source=pulumi.FileArchive(str(args.kit_dir)),
            remote_path=args.commands.kit_path,
            triggers=[args.kit_digest],
            opts=pulumi.ResourceOptions(parent=self, deleted_with=args.deleted_with),
        )
        self.command = remote.Command(
            f"{name}-bootstrap",
            connection=connection,
            create=args.commands.bootstrap,
            delete=args.commands.uninstall if args.uninstall_on_destroy else None,
            triggers=[args.kit_digest],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.kit], deleted_with=args.deleted_with),
        )
        cell = args.cell
        self.result = self.command.stdout.apply(lambda out: parse_bootstrap(out, cell))
        self.register_outputs({"result": self.result})
