//! End-to-end for the kinds the shipped topologies do not cover: an etcd node serving on its
//! management address, `linux` exec lines, a `container` attached to a host, and a failing exec
//! line failing the deploy. Needs root.

mod common;

use std::time::Duration;

use common::{assert_no_leaks, footprint, poll, require_root_and_tools, text, TestLab};

const TOPOLOGY: &str = r#"name: NAME
mgmt:
  ipv4-subnet: 172.20.22.0/24
topology:
  nodes:
    store:
      kind: etcd
      mgmt-ipv4: 172.20.22.5
    client:
      kind: linux
      env:
        GREETING: hello
      exec:
        - ip addr add 10.9.0.1/31 dev eth1
        - echo "$GREETING from $LAB_NODE" > "$LAB_NODE_DIR/greeting"
    app:
      kind: container
      labels:
        lab.host: host
    host:
      kind: netplugin
  links:
    - endpoints: ["client:eth1", "host:eth1"]
"#;

/// The topology with `extra_exec` lines before the client's `echo`.
fn write_lab(tag: &str, extra_exec: &str) -> TestLab {
    let text = TOPOLOGY.replace("        - echo", &format!("{extra_exec}        - echo"));
    TestLab::from_text(tag, &text)
}

#[test]
fn etcd_linux_container_and_ovs_host_come_up() {
    require_root_and_tools(&[
        ("etcd", "etcd-server"),
        ("etcdctl", "etcd-client"),
        ("ovs-vswitchd", "openvswitch-switch"),
    ]);
    let lab = write_lab("kd", "");
    let before = footprint(&lab.name);
    let out = lab.deploy();
    assert!(out.status.success(), "deploy failed: {}", text(&out));

    // etcd answers on its management address from another node.
    let put = lab.exec(
        "client",
        "etcdctl --endpoints=http://172.20.22.5:2379 put lab-key works",
    );
    assert!(put.0, "etcd put failed: {put:?}");
    let got = poll(Duration::from_secs(10), || {
        let (ok, out) = lab.exec("store", "etcdctl get lab-key --print-value-only");
        (ok && out.trim() == "works").then_some(())
    });
    assert!(
        got.is_some(),
        "etcd get: {:?}",
        lab.exec("store", "etcdctl get lab-key")
    );

    // exec lines ran inside the node, with the node's env.
    let (_, addrs) = lab.exec("client", "ip -4 -o addr show dev eth1");
    assert!(addrs.contains("10.9.0.1/31"), "{addrs}");
    let greeting =
        std::fs::read_to_string(format!("/run/lab/{}/client/greeting", lab.name)).unwrap();
    assert_eq!(greeting.trim(), "hello from client");

    // The container knows its host.
    let (_, env) = lab.exec("app", "echo $LAB_HOST $LAB_HOST_NETNS");
    assert_eq!(env.trim(), format!("host {}", lab.netns("host")));

    let out = lab.destroy();
    assert!(out.status.success(), "destroy failed: {}", text(&out));
    assert_no_leaks(&lab.name, &before);
}

#[test]
fn a_failing_exec_line_fails_the_deploy_and_destroy_cleans_up() {
    require_root_and_tools(&[
        ("etcd", "etcd-server"),
        ("ovs-vswitchd", "openvswitch-switch"),
    ]);
    let lab = write_lab("kx", "        - exit 3\n");
    let before = footprint(&lab.name);
    let out = lab.deploy();
    assert!(!out.status.success(), "deploy should fail: {}", text(&out));
    assert!(
        text(&out).contains("node client: `ip netns exec"),
        "{}",
        text(&out)
    );
    let out = lab.destroy();
    assert!(out.status.success(), "destroy failed: {}", text(&out));
    assert_no_leaks(&lab.name, &before);
}

/// Stands in for netmaster: records its arguments, makes a self-signed certificate into
/// `<data-dir>/tls/cert.pem` as the real one does, and answers the admin login over TLS with
/// the password of `--admin-password-file`.
const FAKE_NETMASTER: &str = r#"#!/usr/bin/python3
import json, os, ssl, subprocess, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
args = sys.argv[1:]
flag = dict(zip(args[::2], args[1::2]))
with open(os.environ["FAKE_OUT"], "w") as out:
    out.write(" ".join(args))
host, port = flag["--listen-url"].rsplit(":", 1)
tls = os.path.join(flag["--data-dir"], "tls")
os.makedirs(tls, exist_ok=True)
cert, key = os.path.join(tls, "cert.pem"), os.path.join(tls, "key.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-days", "1", "-subj", "/CN=fake", "-addext", "subjectAltName=IP:" + host,
                "-addext", "basicConstraints=critical,CA:FALSE",
                "-keyout", key, "-out", cert], check=True, capture_output=True)
with open(flag["--admin-password-file"]) as f:
    password = f.readline().strip()
class Login(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ok = self.path == "/api/v1/auth_proxy/login/" and body == {"username": "admin", "password": password}
        reply = json.dumps({"token": "fake-token"} if ok else {"message": "refused"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
    def log_message(self, *args):
        pass
server = HTTPServer((host, int(port)), Login)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;

const FAKE_NETPLUGIN: &str = "#!/bin/bash\n# Stands in for netplugin: records its arguments, stays up.\necho \"$*\" > \"$FAKE_OUT\"\nexec -a \"fake-netplugin $*\" sleep 600\n";

/// lab's side of the netmaster/netplugin kinds, with stand-in binaries (the real ones are
/// tested with lab by the workspace's end-to-end tests): the flags they get, the master's
/// readiness through its TCP port, and the agent's own OVS.
#[test]
fn netmaster_and_netplugin_get_their_flags_and_are_stopped() {
    require_root_and_tools(&[
        ("python3", "python3"),
        ("openssl", "openssl"),
        ("ovs-vswitchd", "openvswitch-switch"),
    ]);
    let topology = r#"name: NAME
topology:
  nodes:
    master1:
      kind: netmaster
      mgmt-ipv4: 172.20.20.10
      env: {FAKE_OUT: "@OUT@/master.args"}
      exec:
        - echo "$NETCTL_TOKEN $NETMASTER $NETCTL_CACERT" > @OUT@/exec.env
    host1:
      kind: netplugin
      env: {FAKE_OUT: "@OUT@/host1.args"}
"#;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().display().to_string();
    let lab = TestLab::from_text("nm", &topology.replace("@OUT@", &out_dir));
    for (name, script) in [("netmaster", FAKE_NETMASTER), ("netplugin", FAKE_NETPLUGIN)] {
        let path = lab.bin_dir.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let before = footprint(&lab.name);
    let out = lab.lab(&["deploy", "-t", lab.file.to_str().unwrap()]);
    assert!(out.status.success(), "deploy failed: {}", text(&out));

    let run = format!("/run/lab/{}", lab.name);
    let master = std::fs::read_to_string(dir.path().join("master.args")).unwrap();
    let m = format!("{run}/master1");
    assert_eq!(
        master,
        format!(
            "--listen-url 172.20.20.10:9999 --data-dir {m}/netmaster --auth on \
             --admin-password-file {m}/admin-password --agent-secret-file {m}/agent-secret"
        )
    );
    let host = std::fs::read_to_string(dir.path().join("host1.args")).unwrap();
    assert_eq!(
        host.trim(),
        format!(
            "--host host1 --ovs-rundir {run}/host1/ovs --socket {run}/host1/netplugin.sock \
             --netmaster https://172.20.20.10:9999 --master-secret-file {m}/agent-secret \
             --master-cacert {m}/netmaster/tls/cert.pem"
        )
    );
    // The password and the secret: random, private; lab logged in with the password (over
    // TLS, trusting the master's certificate) and keeps the token beside them, private too.
    use std::os::unix::fs::PermissionsExt as _;
    for file in ["admin-password", "agent-secret", "admin-token"] {
        let path = std::path::Path::new(&m).join(file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let secret = std::fs::read_to_string(format!("{m}/agent-secret")).unwrap();
    let password = std::fs::read_to_string(format!("{m}/admin-password")).unwrap();
    assert_eq!((secret.trim().len(), password.trim().len()), (64, 64));
    assert_ne!(secret, password);
    assert_eq!(
        std::fs::read_to_string(format!("{m}/admin-token")).unwrap(),
        "fake-token\n"
    );
    // The master's exec lines and `lab exec` have the token and netctl's URL and certificate.
    let seen = std::fs::read_to_string(dir.path().join("exec.env")).unwrap();
    let expected = format!("fake-token https://172.20.20.10:9999 {m}/netmaster/tls/cert.pem");
    assert_eq!(seen.trim(), expected);
    let (ok, out) = lab.exec(
        "master1",
        "echo \"$NETCTL_TOKEN $NETMASTER $NETCTL_CACERT\"",
    );
    assert!(ok);
    assert_eq!(out.trim(), expected);
    // Other nodes get no token.
    let (ok, out) = lab.exec("host1", "echo \"token:$NETCTL_TOKEN\"");
    assert!(ok);
    assert_eq!(out.trim(), "token:");
    // The master answers on the management network from the host.
    assert!(
        lab.exec("host1", "bash -c 'exec 3<>/dev/tcp/172.20.20.10/9999'")
            .0
    );
    let inspect = lab.inspect_json();
    let running: Vec<String> = inspect
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["processes"].as_array().unwrap().clone())
        .filter(|p| p["running"] == true)
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    for daemon in ["netmaster", "netplugin", "ovsdb-server", "ovs-vswitchd"] {
        assert!(
            running.iter().any(|r| r == daemon),
            "{daemon} not running: {running:?}"
        );
    }

    let out = lab.destroy();
    assert!(out.status.success(), "destroy failed: {}", text(&out));
    assert_no_leaks(&lab.name, &before);
}
