//! A real OpenLDAP `slapd` for the LDAP tests (Debian packages `slapd` and `ldap-utils`):
//! an old-style `slapd.conf` (mdb, suffix `dc=example,dc=org`, the core, cosine,
//! inetorgperson and nis schemas, plus two Active Directory attributes, `sAMAccountName` and
//! `memberOf`, so one user can be found the way Contiv found AD users), in a temporary
//! directory, in the foreground on a free loopback port, with the directory's users and groups
//! loaded by `ldapadd`. Killed, and its directory removed, when dropped (a failing test
//! unwinds through the drop too). If slapd cannot run, the test fails and says why.

#![allow(dead_code)]

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SUFFIX: &str = "dc=example,dc=org";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
pub const ROOT_PW: &str = "slapd-root-secret";
pub const SERVICE_DN: &str = "cn=netmaster,ou=services,dc=example,dc=org";
pub const SERVICE_PW: &str = "service-account-secret-81";
/// Members of `netops`, which is a member of `allops`.
pub const ALICE_PW: &str = "alice-ldap-password";
/// Found by `sAMAccountName`; its group only in its own `memberOf` (Active Directory style).
pub const BOB_PW: &str = "bob-ldap-password";
/// In `visitors`, which no authorization names.
pub const CAROL_PW: &str = "carol-ldap-password";
/// A member of `netops` through `uniqueMember` (groupOfUniqueNames).
pub const DAVE_PW: &str = "dave-ldap-password";
pub const NETOPS_DN: &str = "cn=netops,ou=groups,dc=example,dc=org";
pub const ALLOPS_DN: &str = "cn=allops,ou=groups,dc=example,dc=org";
pub const ADGROUP_DN: &str = "cn=ad-operators,ou=groups,dc=example,dc=org";

/// Bound on slapd starting to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

const AD_SCHEMA: &str = "\
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.102 NAME 'memberOf'
  EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )
objectclass ( 1.3.6.1.4.1.4203.666.100.1 NAME 'adAccount' AUXILIARY
  MAY ( sAMAccountName $ memberOf ) )
";

fn directory() -> String {
    format!(
        "\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: ou=services,{SUFFIX}
objectClass: organizationalUnit
ou: services

dn: {SERVICE_DN}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: netmaster
userPassword: {SERVICE_PW}

dn: uid=alice,ou=people,{SUFFIX}
objectClass: inetOrgPerson
uid: alice
cn: Alice Liddell
sn: Liddell
userPassword: {ALICE_PW}

dn: cn=Bob Builder,ou=people,{SUFFIX}
objectClass: inetOrgPerson
objectClass: adAccount
cn: Bob Builder
sn: Builder
sAMAccountName: bob
memberOf: {ADGROUP_DN}
userPassword: {BOB_PW}

dn: uid=carol,ou=people,{SUFFIX}
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: C
userPassword: {CAROL_PW}

dn: uid=dave,ou=people,{SUFFIX}
objectClass: inetOrgPerson
uid: dave
cn: Dave
sn: D
userPassword: {DAVE_PW}

dn: {NETOPS_DN}
objectClass: groupOfNames
cn: netops
member: uid=alice,ou=people,{SUFFIX}

dn: cn=netops-unique,ou=groups,{SUFFIX}
objectClass: groupOfUniqueNames
cn: netops-unique
uniqueMember: uid=dave,ou=people,{SUFFIX}

dn: {ALLOPS_DN}
objectClass: groupOfNames
cn: allops
member: {NETOPS_DN}

dn: {ADGROUP_DN}
objectClass: groupOfNames
cn: ad-operators
member: {SERVICE_DN}

dn: cn=visitors,ou=groups,{SUFFIX}
objectClass: groupOfNames
cn: visitors
member: uid=carol,ou=people,{SUFFIX}
"
    )
}

/// A running slapd.
pub struct Slapd {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// A certificate (and key) for `localhost` that slapd serves for StartTLS.
pub struct TlsFiles {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TlsFiles {
    pub fn localhost() -> TlsFiles {
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("cert params");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("certificate");
        TlsFiles {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

impl Slapd {
    /// Starts slapd with the test directory loaded; panics saying why when it cannot.
    pub fn start(tls: Option<&TlsFiles>) -> Slapd {
        for tool in ["slapd", "ldapadd"] {
            let found = Command::new("sh")
                .args([
                    "-c",
                    &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
                ])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                found,
                "{tool} is not installed: the LDAP tests need Debian's slapd and ldap-utils \
                 (scripts/install-deps.sh installs them)"
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let data = d.join("data");
        std::fs::create_dir(&data).expect("data dir");
        write(&d.join("ad.schema"), AD_SCHEMA);
        let mut tls_lines = String::new();
        if let Some(t) = tls {
            write(&d.join("cert.pem"), &t.cert_pem);
            write(&d.join("key.pem"), &t.key_pem);
            tls_lines = format!(
                "TLSCertificateFile {0}/cert.pem\nTLSCertificateKeyFile {0}/key.pem\n",
                d.display()
            );
        }
        let conf = format!(
            "\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include {dir}/ad.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
{tls_lines}
database mdb
maxsize 16777216
suffix \"{SUFFIX}\"
rootdn \"{ROOT_DN}\"
rootpw {ROOT_PW}
directory {dir}/data
access to attrs=userPassword by anonymous auth by self write by * none
access to * by users read by * none
",
            dir = d.display()
        );
        write(&d.join("slapd.conf"), &conf);
        let port = free_port();
        let log = std::fs::File::create(d.join("slapd.log")).expect("log file");
        // Debian puts slapd in /usr/sbin, which a user's PATH may lack.
        let program = if Path::new("/usr/sbin/slapd").exists() {
            "/usr/sbin/slapd"
        } else {
            "slapd"
        };
        let child = Command::new(program)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/"))
            // In the foreground (it stays our child, and dies with us), logging little.
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("slapd cannot be started: {e}"));
        let mut slapd = Slapd {
            port,
            child: Some(child),
            dir,
        };
        slapd.wait_ready();
        slapd.load(&directory());
        slapd
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let until = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("slapd exited at start ({status}):\n{}", self.log());
                }
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < until,
                "slapd did not listen on 127.0.0.1:{} within {START_TIMEOUT:?}:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Adds entries (LDIF) as the root DN.
    pub fn load(&self, ldif: &str) {
        let mut child = Command::new("ldapadd")
            .args(["-x", "-H", &format!("ldap://127.0.0.1:{}/", self.port)])
            .args(["-D", ROOT_DN, "-w", ROOT_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("ldapadd cannot be started: {e}"));
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("ldif to ldapadd");
        let out = child.wait_with_output().expect("ldapadd runs");
        assert!(
            out.status.success(),
            "ldapadd failed: {}\nslapd:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Kills slapd (the directory stays until drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
