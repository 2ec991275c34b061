"""What every instance backend hands on: how to reach one machine over SSH."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_command import remote


@dataclass(frozen=True)
class Host:
    address: pulumi.Output[str]
    user: str
    arch: str
    private_key: pulumi.Output[str]  # always a secret
    port: int = 22
    # How many times to redial: a booting VM refuses SSH for a while (the default budget is ~7.5 s).
    dial_error_limit: int = 60

    def connection(self) -> remote.ConnectionArgs:
        return remote.ConnectionArgs(
            host=self.address,
            user=self.user,
            port=self.port,
            private_key=pulumi.Output.secret(self.private_key),
            dial_error_limit=self.dial_error_limit,
            per_dial_timeout=15,
        )
