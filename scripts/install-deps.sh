#!/usr/bin/env bash
# Installs the Debian packages the fabric, its demo and its tests use, when they are missing.
# Safe to run again: it only calls apt-get when something is not installed.
set -euo pipefail

packages=(
  openvswitch-switch   # OVS userspace datapath for the agent's bridge
  bird2 frr gobgpd     # top-of-rack routers in the lab and BGP interop peers
  etcd-server etcd-client
  protobuf-compiler libprotobuf-dev  # build the etcd-client crate (protoc, and the well-known
                                     # types it imports, which --no-install-recommends leaves out)
  iproute2 iputils-ping ethtool iperf3 tcpdump nftables
  graphviz             # lab graph renders PNGs
  busybox-static       # a root filesystem for container images
  slapd ldap-utils     # a real OpenLDAP server (and ldapadd) for the master's LDAP login tests
  curl jq
  python3 openssl      # lab's stand-in netmaster (tests/kinds.rs): a certificate, a TLS login
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "need root to install packages (run as root or with sudo)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install --locked cargo-nextest >/dev/null
fi
echo "dependencies present"
