"""k8s-footprint: which Kubernetes distribution fits on a 1 GiB machine, and what it costs.

stack config -> FleetSpec -> cells (arch x distro x memory x repetition), and for each cell:
    instance (aws | libvirt | hosts) -> DistroBootstrap -> WorkloadBenchmark -> one JSON result
"""

import pulumi

from components import config, cost, fit
from components.backends import Backend
from components.benchmark import WorkloadBenchmark, WorkloadBenchmarkArgs
from components.bootstrap import DistroBootstrap, DistroBootstrapArgs, MachineLifecycle
from components.cells import expand
from components.commands import BenchPlan, cell_commands, kit_hash
from components.results import summary_table

spec = config.load()  # invalid config stops here, before any resource exists
backend = Backend(spec)
digest = kit_hash()

benchmarks: dict[str, WorkloadBenchmark] = {}
instances = {}
cells = expand(spec)
for cell in cells:
    commands = cell_commands(BenchPlan.for_cell(spec, cell), digest)
    # maxParallelCells: a cell's instance waits until the previous cell in its lane is done.
    after = [benchmarks[cell.previous]] if cell.previous else []
    # A changed command set (or kit) replaces the machine: never a re-run on a used one.
    instance = backend.instance(cell, after, commands.fingerprint())
    bootstrap = DistroBootstrap(cell.name, DistroBootstrapArgs(
        cell=cell.name, host=instance.host, commands=commands, kit_digest=digest,
        lifecycle=MachineLifecycle(instance.machine, spec.allow_uninstall)))
    benchmarks[cell.name] = WorkloadBenchmark(cell.name, WorkloadBenchmarkArgs(
        cell=cell.name, host=instance.host, command=commands.benchmark, after=[bootstrap],
        triggers=[digest], deleted_with=instance.machine,
        replace_with=[instance.machine or bootstrap.command], kit_hash=digest, machine=instance.provenance))
    instances[cell.name] = instance.description

results = pulumi.Output.all(**{name: b.result for name, b in benchmarks.items()})
summary = results.apply(summary_table)
pulumi.export("runId", spec.run_id)
pulumi.export("results", results)
pulumi.export("instances", pulumi.Output.all(**instances))
pulumi.export("summary", summary)
# The hosts backend's size is the host's own: fit reads its MemTotal from the result.
sizes = [(c.name, c.arch, c.distro, None if spec.backend == "hosts" else c.memory_mib) for c in cells]
fit_verdicts = results.apply(lambda r: fit.fit_output(sizes, r, spec.fit_headroom_mib))
pulumi.export("fit", fit_verdicts)
pulumi.export("costEstimateUsd", cost.estimate(spec))
