#!/usr/bin/env bash
# The demo: build, bring up the two-rack fabric in network namespaces, show the ToRs' BGP, and
# walk through the Contiv tutorial as far as what is built today. Run from the repository root
# as root. Installs nothing: scripts/install-deps.sh does that; this checks and says what is
# missing.
#
#   lab/demo.sh            # build, deploy, walk through
#   lab/demo.sh --destroy  # tear the demo lab down
set -euo pipefail

cd "$(dirname "$0")/.."
TOPO=lab/topologies/two-rack.clab.yml
LAB=target/release/lab
NETCTL=target/release/netctl
MASTER_URL=https://172.20.20.10:9999
LABNAME=two-rack

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
run() {
  printf '   $'; printf ' %q' "$@"; printf '\n'
  "$@" 2>&1 | sed 's/^/     /' || printf '     (exit status %s)\n' "${PIPESTATUS[0]}"
}
# Polls a command (quietly) up to $1 seconds.
wait_for() {
  local limit=$1; shift
  for ((i = 0; i < limit * 2; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  return 1
}
not_yet() { printf '   \033[33mnot there yet:\033[0m %s\n' "$*"; }

if [[ ${1:-} == --destroy ]]; then
  "$LAB" destroy -t "$TOPO"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "demo: needs root (it creates network namespaces); run: sudo $0" >&2
  exit 1
fi

bold "1. Checking the tools the fabric uses"
missing=()
need() { command -v "$1" >/dev/null 2>&1 || [[ -x $1 ]] || missing+=("$1 (Debian package $2)"); }
need ip iproute2
need ping iputils-ping
need bird bird2
need birdc bird2
need vtysh frr
need /usr/lib/frr/zebra frr
need ovs-vswitchd openvswitch-switch
need ovsdb-server openvswitch-switch
need cargo "rustup (Rust)"
if ((${#missing[@]})); then
  say "missing:"
  for m in "${missing[@]}"; do say "  - $m"; done
  say "install them with scripts/install-deps.sh, then run this again"
  exit 1
fi
say "all there"

bold "2. Building in release mode"
run scripts/build-release.sh --quiet

# A binary counts as built when it is the real thing: it takes the flags lab starts it with
# (the workspace skeleton has placeholder binaries that do nothing).
built() { [[ -x target/release/$1 ]] && "target/release/$1" --help 2>&1 | grep -q -- "$2"; }
BIN_DIR=$(mktemp -d)
trap 'rm -rf "$BIN_DIR"' EXIT
have_master=no; built netmaster --admin-password-file && have_master=yes
have_agent=no; built netplugin --ovs-rundir && have_agent=yes
have_netctl=no; built netctl tenant && have_netctl=yes
[[ $have_master == yes ]] && ln -s "$PWD/target/release/netmaster" "$BIN_DIR/"
[[ $have_agent == yes ]] && ln -s "$PWD/target/release/netplugin" "$BIN_DIR/"
[[ $have_agent == yes ]] && ln -s "$PWD/target/release/contivk8s" "$BIN_DIR/"
export LAB_BIN_DIR=$BIN_DIR
say "netmaster: $have_master, netplugin (agent): $have_agent, netctl: $have_netctl"

bold "3. Deploying two-rack ($TOPO)"
say "tor1 = BIRD (AS 65101), tor2 = FRR (AS 65102), host1..4 = fabric hosts with OVS, master1 = netmaster"
skip=()
if [[ $have_agent == no || $have_master == no ]]; then
  skip=(--skip-missing)
  say "deploying with --skip-missing: hosts without an agent come up as plain OVS hosts"
fi
"$LAB" deploy -t "$TOPO" --reconfigure "${skip[@]}"

bold "4. The ToRs peer over eBGP"
wait_for 30 sh -c "'$LAB' exec -t '$TOPO' tor1 -- birdc show route protocol tor2 | grep -q 10.254.2" ||
  say "(tor1 has no routes from tor2 after 30 s; the output below shows where it stands)"
run "$LAB" exec -t "$TOPO" tor1 -- birdc show protocols
run "$LAB" exec -t "$TOPO" tor2 -- vtysh -c 'show bgp summary'
say "routes tor1 learned from tor2 (the other rack's links):"
run "$LAB" exec -t "$TOPO" tor1 -- birdc show route protocol tor2

bold "5. The underlay routes across racks"
run "$LAB" exec -t "$TOPO" host1 -- ping -c 2 -W 1 10.254.2.1

bold "6. The Contiv tutorial: tenant, network, group, policy through netctl"
if [[ $have_netctl == yes && $have_master == yes ]]; then
  M1=/run/lab/$LABNAME/master1
  say "the master serves TLS (its self-signed certificate: $M1/netmaster/tls/cert.pem) with"
  say "authentication on; lab wrote the admin password ($M1/admin-password, 0600) and the"
  say "agents' bootstrap secret ($M1/agent-secret), which the agents registered with"
  say "without a token the master answers nothing:"
  run "$LAB" exec -t "$TOPO" master1 -- env -u NETCTL_TOKEN "$PWD/$NETCTL" --netmaster "$MASTER_URL" tenant ls
  say "Contiv's login (the token is kept under a config dir of the demo's own):"
  printf '   $ netctl login -u admin --password-stdin < %s/admin-password\n' "$M1"
  "$LAB" exec -t "$TOPO" master1 -- env -u NETCTL_TOKEN XDG_CONFIG_HOME="$BIN_DIR/config" \
    "$PWD/$NETCTL" --netmaster "$MASTER_URL" login -u admin --password-stdin <"$M1/admin-password" 2>&1 |
    sed 's/^/     /'
  run "$LAB" exec -t "$TOPO" master1 -- env -u NETCTL_TOKEN XDG_CONFIG_HOME="$BIN_DIR/config" \
    "$PWD/$NETCTL" --netmaster "$MASTER_URL" tenant ls
  say "from here on, commands in master1 carry the token lab logged in for (NETCTL_TOKEN)"
  nc() { run "$LAB" exec -t "$TOPO" master1 -- "$PWD/$NETCTL" --netmaster "$MASTER_URL" "$@"; }
  say "Contiv's tutorial, spelled as its documentation spells it (one-dash long flags work):"
  nc global set --fwd-mode routing
  nc net create --subnet=10.1.2.0/24 --gateway=10.1.2.1 contiv-net
  say "each host's BGP: its own AS, peering with its ToR (the agents pick this up live)"
  nc bgp create host1 --router-ip 10.254.1.1/31 --as 65211 --neighbor-as 65101 --neighbor 10.254.1.0
  nc bgp create host2 --router-ip 10.254.1.3/31 --as 65212 --neighbor-as 65101 --neighbor 10.254.1.2
  nc bgp create host3 --router-ip 10.254.2.1/31 --as 65213 --neighbor-as 65102 --neighbor 10.254.2.0
  nc bgp create host4 --router-ip 10.254.2.3/31 --as 65214 --neighbor-as 65102 --neighbor 10.254.2.2
  nc policy create db-policy
  nc policy rule-add db-policy 1 -direction=in -protocol=tcp -action=deny
  nc policy rule-add db-policy 2 -direction=in -protocol=tcp -port=8888 -action=allow -priority=10
  nc group create contiv-net db-group -policy=db-policy
  nc group create contiv-net web-group
  nc net ls
  nc group ls
  nc policy rule-ls db-policy
else
  [[ $have_master == yes ]] || not_yet "netmaster (the master) is not built, so master1 is an empty namespace"
  [[ $have_netctl == yes ]] || not_yet "netctl is not built"
fi

bold "7. Containers on hosts in both racks, their /32s in both ToRs, ping across racks"
if [[ $have_agent == yes && $have_master == yes && $have_netctl == yes ]]; then
  # What a container runtime does: the CNI plugin with CNI_* variables and the config on stdin.
  cni_add() { # host container group
    local host=$1 ctr=$2 group=$3
    printf '   $ CNI_COMMAND=ADD CNI_NETNS=/run/netns/clab-%s-%s CNI_ARGS=io.contiv.net-group=%s contivk8s < conf\n' \
      "$LABNAME" "$ctr" "$group"
    echo '{"cniVersion":"1.0.0","name":"contiv","type":"contivk8s","network":"contiv-net"}' |
      env CNI_COMMAND=ADD CNI_CONTAINERID="demo-$ctr" CNI_NETNS="/run/netns/clab-$LABNAME-$ctr" \
        CNI_IFNAME=eth1 CNI_PATH="$PWD/target/release" \
        CNI_ARGS="IgnoreUnknown=1;io.contiv.net-group=$group" \
        CONTIV_NETPLUGIN_SOCKET="/run/lab/$LABNAME/$host/netplugin.sock" \
        target/release/contivk8s | tee "/tmp/demo-cni-$ctr.json" | sed 's/^/     /' ||
      say "(the ADD of $ctr failed: the error above says why)"
    echo
  }
  ip_of() { jq -r '.ips[0].address' "/tmp/demo-cni-$1.json" | cut -d/ -f1; }
  say "app3 (host3, rack 2) is the database: it listens on 8888 and 80 before it has a network"
  for port in 8888 80; do
    ip netns exec "clab-$LABNAME-app3" busybox nc -ll -p "$port" -e /bin/cat </dev/null >/dev/null 2>&1 &
  done
  cni_add host3 app3 db-group
  cni_add host1 app1 web-group
  ip1=$(ip_of app1); ip3=$(ip_of app3)
  say "app1 = $ip1 on host1 (rack 1), app3 = $ip3 on host3 (rack 2)"
  say "their /32s in both ToRs, advertised by the agents over eBGP:"
  wait_for 20 sh -c "'$LAB' exec -t '$TOPO' tor1 -- birdc show route $ip3/32 | grep -q $ip3" || true
  run "$LAB" exec -t "$TOPO" tor1 -- birdc show route in 10.1.2.0/24
  run "$LAB" exec -t "$TOPO" tor2 -- vtysh -c 'show ip bgp 10.1.2.0/24 longer-prefixes'
  say "ping across racks, app1 -> app3 (no NAT, no overlay):"
  wait_for 20 "$LAB" exec -t "$TOPO" app1 -- ping -c 1 -W 1 "$ip3" || true
  run "$LAB" exec -t "$TOPO" app1 -- ping -c 3 -W 1 "$ip3"
  say "db-policy on db-group: TCP denied except 8888"
  printf '   $ app1: nc %s 8888\n' "$ip3"
  if ip netns exec "clab-$LABNAME-app1" sh -c "echo allowed | busybox nc -w 2 $ip3 8888" | grep -q allowed; then
    say "  -> connected and echoed: port 8888 is allowed"
  else
    say "  -> FAILED: port 8888 should be allowed"
  fi
  printf '   $ app1: nc %s 80\n' "$ip3"
  if ip netns exec "clab-$LABNAME-app1" sh -c "echo denied | busybox nc -w 2 $ip3 80" 2>/dev/null | grep -q denied; then
    say "  -> FAILED: port 80 should be denied"
  else
    say "  -> no connection: port 80 is denied by db-policy"
  fi
else
  not_yet "the agent (netplugin) and its CNI plugin: app1 and app3 are namespaces, not attached"
fi

bold "Look around"
say "$LAB inspect -t $TOPO"
say "$LAB exec -t $TOPO tor1 -- birdc show route all"
say "$LAB exec -t $TOPO tor2 -- vtysh -c 'show ip bgp'"
say "$LAB exec -t $TOPO host1 -- ovs-vsctl show"
[[ $have_netctl == yes ]] && say "$LAB exec -t $TOPO master1 -- $PWD/$NETCTL tenant ls   # lab gives master1 NETMASTER, NETCTL_CACERT and NETCTL_TOKEN"
say "$LAB graph -t $TOPO --out-dir /tmp   # /tmp/two-rack.png"
bold "Tear down"
say "$LAB destroy -t $TOPO      (or: lab/demo.sh --destroy)"
