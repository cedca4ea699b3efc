#!/usr/bin/env bash
# The demo: installs what is missing, builds in release mode, deploys the two-rack fabric in
# network namespaces and walks through Contiv's tutorial on it (lab/demo.sh does the walk).
#   sudo ./scripts/demo.sh            # bring it up and walk through
#   sudo ./scripts/demo.sh --destroy  # tear it down
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} != --destroy ]]; then
  ./scripts/install-deps.sh
fi
export PATH="/usr/sbin:/usr/lib/frr:$PATH"
exec lab/demo.sh "$@"
