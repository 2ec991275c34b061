# shellcheck shell=sh
# Source this from the project's folder (". ./env.sh") to run plain `pulumi` commands against the
# same state as `make`: the project's local file backend in .pulumi-state/ and the development
# passphrase, unless you set your own first. Without it, `pulumi config set` or `pulumi stack output`
# reach whatever backend your shell points at, or ask you to log in.
if grep -q '^name: k8s-footprint$' Pulumi.yaml 2>/dev/null; then
  export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$(pwd)/.pulumi-state}"
  export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-k8s-footprint-dev}"
  echo "env.sh: PULUMI_BACKEND_URL=$PULUMI_BACKEND_URL" >&2
else
  echo "env.sh: source it from the k8s-footprint folder (the one with its Pulumi.yaml)" >&2
fi
