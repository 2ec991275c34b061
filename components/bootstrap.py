"""Upload the guest kit and install one distro, waiting until it is really ready."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi_command import remote

from components import commands as commands_module
from components.commands import CellCommands
from components.host import Host
from components.results import parse_bootstrap


@dataclass(frozen=True)
class MachineLifecycle:
    """How a cell's commands follow its machine: one Pulumi creates (replace_with), or a host it
    doesn't own (hosts backend: replace only with the user's consent to uninstall)."""

    # The resource whose deletion takes the machine with it; None: the machine outlives the stack.
    machine: pulumi.Resource | None
    # hosts backend only: may a replace or destroy remove the distro from the user's machine?
    allow_uninstall: bool = False


@dataclass(frozen=True)
class DistroBootstrapArgs:
    cell: str
    host: Host
    commands: CellCommands
    kit_digest: str
    lifecycle: MachineLifecycle
    kit_dir: Path | None = None  # the guest kit; None: components.commands.KIT_DIR


class DistroBootstrap(pulumi.ComponentResource):
    result: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: DistroBootstrapArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("k8s-footprint:index:DistroBootstrap", name, None, opts)
        connection = args.host.connection()
        machine = args.lifecycle.machine
        # A replaced machine is a new, empty one: the kit and the install go to it again.
        follow = [machine] if machine is not None else []
        delete, update, options = _lifecycle(args)
        self.kit = remote.CopyToRemote(
            f"{name}-kit",
            connection=connection,
            source=pulumi.FileArchive(str(args.kit_dir or commands_module.KIT_DIR)),
            remote_path=args.commands.kit_path,
            triggers=[args.kit_digest],
            # On a host, a replaced bootstrap's delete removes the kit folder; the copy is replaced
            # with it, deleting first, and the bootstrap takes the copy's id as an input (below), so
            # the engine deletes the bootstrap, then uploads the kit again, then installs
            # (CopyToRemote has no delete of its own: pulumi-command v1.2.1 copyController.go has no
            # Delete).
            opts=pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(parent=self, deleted_with=machine, replace_with=follow), options),
        )
        # On a host with allowUninstall, the old bootstrap's delete removes the kit folder, and the
        # kit copy is replaced deleting first. The engine deletes a resource's dependents before it
        # (a delete-before-replace) only when they take one of its outputs as an input, never for a
        # bare depends_on (pulumi pkg/v3 step_generator.go calculateDependentReplacements). Without
        # this input the engine uploaded the kit again first, then ran the old delete, which removed
        # that fresh upload, and the new install found no kit (benchmarks/results/e2e/README.md).
        kit_input = [self.kit.id] if machine is None and args.lifecycle.allow_uninstall else None
        self.command = remote.Command(
            f"{name}-bootstrap",
            connection=connection,
            create=args.commands.bootstrap,
            delete=delete,
            update=update,
            triggers=kit_input,
            opts=pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(parent=self, depends_on=[self.kit], deleted_with=machine, replace_with=follow),
                options),
        )
        cell = args.cell
        self.result = self.command.stdout.apply(lambda out: parse_bootstrap(out, cell))
        self.register_outputs({"result": self.result})


def _lifecycle(args: DistroBootstrapArgs) -> tuple[str | None, str | None, pulumi.ResourceOptions | None]:
    """The bootstrap's delete/update commands and replace options, by who owns the machine.

    A machine Pulumi created is replaced with it (replace_with), and deleting it takes the install
    along: no command runs on destroy. On a host Pulumi doesn't own (the hosts backend):
    - with allowUninstall, a changed command set replaces the bootstrap, deleting first: the old
      distro is uninstalled before the new install, so the new one is measured on a clean host;
    - without it, nothing is removed from the user's machine. Destroy leaves the distro installed
      and says so, and a changed command set is refused with a message, because a clean install
      can't be measured there: pulumi-command runs `update`, when given, instead of `create` again
      when `create` changes.
    """
    commands = args.commands
    if args.lifecycle.machine is not None:
        return None, None, None
    if args.lifecycle.allow_uninstall:
        return commands.uninstall, None, pulumi.ResourceOptions(
            replacement_trigger=commands.fingerprint(), delete_before_replace=True)
    return commands.leave_installed, commands.refuse_reinstall, None
