#!/usr/bin/env bash
# Make upstream/cmd/pulumi-resource-tls/schema-embed.json, which the provider embeds: upstream's
# `VERSION=<v> go generate` step, done by schemagen inside this wrapper module. Run by build.sh.
set -euo pipefail
version=${1:?usage: prebuild.sh VERSION}
timeout "${GO_TIMEOUT:-3600}" go run ./schemagen upstream/cmd/pulumi-resource-tls "$version"
test -s upstream/cmd/pulumi-resource-tls/schema-embed.json
test -s upstream/cmd/pulumi-resource-tls/bridge-metadata.json
