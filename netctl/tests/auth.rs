//! End to end over TLS with authentication on (issue 18): the real netmaster started with
//! `--auth on --admin-password-file <f>` and its self-signed certificate (given to netctl with
//! `--cacert`/`NETCTL_CACERT`), `netctl login --password-stdin`, Contiv's tutorial with the
//! saved token, the clear 401 without one, an ops user of tenant blue made with
//! `netctl user create` + `netctl authorization create` who may change blue but not default,
//! and `netctl logout` revoking the token.
//!
//! The netmaster binary must be built first (`cargo build -p netmaster`); one without those
//! features fails the test.

mod common;

use common::{features, Netmaster, TUTORIAL};
use serde_json::Value;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const ADMIN_PASSWORD: &str = "correct horse battery staple";
const OPS_PASSWORD: &str = "blue-ops-password-42";
const NOT_LOGGED_IN: &str = "not logged in or the token expired: run netctl login";

/// The master with authentication on.
fn secured_master() -> Netmaster {
    let f = features();
    assert!(
        f.auth && f.tls,
        "this netmaster has no --auth/--admin-password-file or no TLS ({f:?}): build the \
         current one (`cargo build -p netmaster`)"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("admin-password");
    std::fs::write(&file, format!("{ADMIN_PASSWORD}\n")).expect("password file");
    #[cfg(unix)]
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let file = file.to_string_lossy().into_owned();
    let master = Netmaster::start_with(&["--auth", "on", "--admin-password-file", &file]);
    assert!(master.cacert.is_some(), "the master serves TLS by default");
    master
}

/// `echo PASSWORD | netctl login -u USER --password-stdin` with this HOME.
fn login(master: &Netmaster, home: &Path, user: &str, password: &str) -> String {
    let home = home.to_string_lossy();
    master.ok_env(
        &format!("printf '%s\\n' '{password}' | netctl login -u {user} --password-stdin"),
        &[("HOME", &home)],
    )
}

/// The token saved in this HOME for the master's URL.
fn saved_token(master: &Netmaster, home: &Path) -> String {
    let file = home.join(".config/netctl/tokens.json");
    let text = std::fs::read_to_string(&file).expect("token file");
    let tokens: Value = serde_json::from_str(&text).expect("token file JSON");
    tokens["netmasters"][master.url.as_str()]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token for {} in {text}", master.url))
        .to_string()
}

fn new_home(master: &Netmaster, name: &str) -> std::path::PathBuf {
    let home = master.dir().join(name);
    std::fs::create_dir_all(&home).expect("home");
    home
}

#[test]
fn login_then_the_tutorial_then_logout() {
    let master = secured_master();

    // Without a token: the clear 401, before and after a failed login.
    let err = master.fails("netctl tenant ls");
    assert!(err.contains(NOT_LOGGED_IN), "{err}");
    let err = master.fails("printf 'wrong-password\\n' | netctl login -u admin --password-stdin");
    assert!(
        err.contains("Login failed: Bad username or password."),
        "{err}"
    );
    assert!(!master.home().join(".config/netctl/tokens.json").exists());

    // The certificate is checked: without --cacert it is refused, --insecure skips (and says so).
    let err = master.fails_env("netctl tenant ls", &[("NETCTL_CACERT", "")]);
    assert!(err.contains("--cacert"), "{err}");
    let out = master.sh_env("netctl --insecure tenant ls", &[("NETCTL_CACERT", "")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("WARN[0000] --insecure"), "{stderr}");
    assert!(
        stderr.contains(NOT_LOGGED_IN),
        "TLS done, no token: {stderr}"
    );

    // Login: the token is saved for this URL, private.
    assert_eq!(
        login(&master, &master.home(), "admin", ADMIN_PASSWORD),
        "Login succeeded.\n"
    );
    let dir = master.home().join(".config/netctl");
    #[cfg(unix)]
    {
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("tokens.json")), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }
    let admin_token = saved_token(&master, &master.home());

    // Contiv's tutorial with the saved token.
    for line in TUTORIAL {
        master.ok(line);
    }
    let net = master.get_as("/api/v1/networks/blue:contiv-net/", Some(&admin_token));
    assert_eq!(net["subnet"], "10.1.2.0/24");
    let rule = master.get_as("/api/v1/rules/default:db-policy:2/", Some(&admin_token));
    assert_eq!(rule["port"], 8888);
    assert_eq!(master.ok("netctl tenant ls -q"), "blue\ndefault\n");

    // A fresh HOME has no token: the clear 401.
    let fresh = new_home(&master, "fresh");
    let fresh_home = fresh.to_string_lossy();
    let err = master.fails_env("netctl net ls -t blue", &[("HOME", &fresh_home)]);
    assert!(err.starts_with("ERRO[0000] "), "{err}");
    assert!(err.contains(NOT_LOGGED_IN), "{err}");
    // ... and NETCTL_TOKEN (for scripts) stands in for the file.
    master.ok_env(
        "netctl net ls -t blue",
        &[("HOME", &fresh_home), ("NETCTL_TOKEN", &admin_token)],
    );

    // Logout revokes: the old token no longer works anywhere, and the file forgets it.
    assert_eq!(master.ok("netctl logout"), "Logged out.\n");
    assert!(
        !std::fs::read_to_string(dir.join("tokens.json"))
            .unwrap_or_default()
            .contains(&admin_token),
        "the token is gone from the file"
    );
    let err = master.fails("netctl tenant ls");
    assert!(err.contains(NOT_LOGGED_IN), "{err}");
    let err = master.fails_env("netctl tenant ls", &[("NETCTL_TOKEN", &admin_token)]);
    assert!(err.contains(NOT_LOGGED_IN), "a revoked token: {err}");
    assert_eq!(
        master.status_as("/api/v1/tenants/", Some(&admin_token)),
        401
    );
    let err = master.fails("netctl logout");
    assert!(err.contains("not logged in"), "{err}");
}

#[test]
fn an_ops_user_of_blue_changes_blue_only() {
    let master = secured_master();
    login(&master, &master.home(), "admin", ADMIN_PASSWORD);
    master.ok("netctl tenant create blue");
    master.ok("netctl net create -t blue -s 10.1.2.0/24 -g 10.1.2.254 contiv-net");

    // The admin makes the user and its authorization.
    assert_eq!(
        master.ok(&format!(
            "netctl user create -p {OPS_PASSWORD} --first-name Olga --last-name Ops alice"
        )),
        "Creating user alice\n"
    );
    let created = master.ok("netctl authorization create alice --role ops --tenant blue");
    assert!(
        created.starts_with("Creating authorization ")
            && created
                .trim_end()
                .ends_with(": ops of tenant blue for local user alice"),
        "{created}"
    );
    let users = master.ok("netctl user ls");
    let alice_row = users.lines().find(|l| l.starts_with("alice"));
    assert!(
        alice_row.is_some_and(|l| l.contains("Olga") && l.contains("Ops") && l.ends_with("no")),
        "{users}"
    );
    assert_eq!(
        master.ok("netctl user ls -q").lines().collect::<Vec<_>>(),
        ["admin", "alice"]
    );
    let user: Value = serde_json::from_str(&master.ok("netctl user inspect alice")).expect("JSON");
    assert_eq!(user["first_name"], "Olga");
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let authz: Value =
        serde_json::from_str(&master.ok("netctl authorization ls -j")).expect("JSON");
    let alice_authz = authz
        .as_array()
        .and_then(|list| list.iter().find(|a| a["PrincipalName"] == "alice"))
        .cloned()
        .unwrap_or_else(|| panic!("alice's authorization in {authz}"));
    assert_eq!(alice_authz["Role"], "ops");
    assert_eq!(alice_authz["TenantName"], "blue");
    let uuid = alice_authz["AuthzUUID"].as_str().expect("uuid").to_string();
    assert!(master.ok("netctl authorization ls -q").contains(&uuid));
    let inspected: Value =
        serde_json::from_str(&master.ok(&format!("netctl authorization inspect {uuid}")))
            .expect("JSON");
    assert_eq!(inspected["PrincipalName"], "alice");
    let table = master.ok("netctl authorization ls");
    assert!(table.starts_with("UUID"), "{table}");

    // Alice logs in with her own HOME and may change blue, not default.
    let alice = new_home(&master, "alice");
    let alice_home = alice.to_string_lossy().into_owned();
    let as_alice = [("HOME", alice_home.as_str())];
    login(&master, &alice, "alice", OPS_PASSWORD);
    master.ok_env(
        "netctl net create -t blue -s 10.1.5.0/24 -g 10.1.5.254 ops-net",
        &as_alice,
    );
    master.ok_env("netctl policy create -t blue web-policy", &as_alice);
    master.ok_env(
        "netctl policy rule-add -t blue web-policy 1 -direction=in -protocol=tcp -port=80",
        &as_alice,
    );
    master.ok_env("netctl group create -t blue ops-net web", &as_alice);
    let nets = master.ok_env("netctl net ls -t blue -q", &as_alice);
    assert!(
        nets.contains("ops-net") && nets.contains("contiv-net"),
        "{nets}"
    );
    for line in [
        "netctl net create -s 10.1.6.0/24 default-net",
        "netctl policy create not-mine",
        "netctl tenant create green",
        "netctl global set --fwd-mode bridge",
        "netctl user ls",
        "netctl authorization ls",
    ] {
        let err = master.fails_env(line, &as_alice);
        assert!(err.contains("permission denied"), "`{line}`: {err}");
    }
    let admin_token = saved_token(&master, &master.home());
    assert_eq!(
        master.status_as("/api/v1/networks/default:default-net/", Some(&admin_token)),
        404
    );
    // Deleting blue's objects is hers too.
    master.ok_env("netctl group rm -t blue web", &as_alice);

    // The admin disables alice: her token stops working at once.
    master.ok("netctl user update --disable alice");
    let err = master.fails_env("netctl net ls -t blue", &as_alice);
    assert!(err.contains(NOT_LOGGED_IN), "{err}");
    master.ok("netctl user update --enable alice");
    login(&master, &alice, "alice", OPS_PASSWORD);
    master.ok_env("netctl net ls -t blue", &as_alice);

    // The authorization removed: alice is no longer ops of blue.
    assert_eq!(
        master.ok(&format!("netctl authorization rm {uuid}")),
        format!("Deleting authorization {uuid}\n")
    );
    let err = master.fails_env(
        "netctl net create -t blue -s 10.1.7.0/24 late-net",
        &as_alice,
    );
    assert!(
        err.contains("permission denied") || err.contains(NOT_LOGGED_IN),
        "{err}"
    );
    assert_eq!(master.ok("netctl user rm alice"), "Deleting user alice\n");
    let err = master
        .fails("printf '%s\\n' 'blue-ops-password-42' | netctl login -u alice --password-stdin");
    assert!(err.contains("Login failed"), "{err}");
}
