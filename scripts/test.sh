#!/usr/bin/env bash
# The whole test suite: installs what is missing, checks formatting and lints, then runs every
# test (unit, store conformance on embedded and etcd, REST, netns/OVS/BGP end-to-end) with
# nextest. Tests that need root say so and fail when run without it.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
export PATH="/usr/sbin:/usr/lib/frr:$PATH"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo build (binaries the end-to-end tests start)"
cargo build --workspace --bins --quiet
echo "== cargo nextest"
cargo nextest run --workspace --profile ci "$@"
