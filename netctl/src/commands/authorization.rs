//! `netctl authorization create|ls|rm|inspect`: Contiv auth_proxy's authorizations
//! (`/api/v1/auth_proxy/authorizations/`). A request has `principalName`, `local`, `role` and
//! `tenantName`; an answer `AuthzUUID`, `PrincipalName`, `Local`, `Role`, `TenantName` (Contiv's
//! Go names; the camelCase spellings are read too).

use super::{emit, render_list, to_json};
use crate::cli::{AuthorizationCmd, AuthorizationCreate};
use crate::client::{encode, Client};
use crate::table::Table;
use anyhow::bail;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const AUTHORIZATIONS_PATH: &str = "/api/v1/auth_proxy/authorizations/";

/// One authorization as auth_proxy answers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Authorization {
    #[serde(rename = "AuthzUUID", alias = "authzUUID", alias = "uuid", default)]
    pub uuid: String,
    #[serde(rename = "PrincipalName", alias = "principalName", default)]
    pub principal_name: String,
    #[serde(rename = "Local", alias = "local", default)]
    pub local: bool,
    #[serde(rename = "Role", alias = "role", default)]
    pub role: String,
    #[serde(rename = "TenantName", alias = "tenantName", default)]
    pub tenant_name: String,
}

/// A list answer: Contiv's handler sends a bare array; its Go type wraps it in `AuthList`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum List {
    Bare(Vec<Authorization>),
    Wrapped {
        #[serde(rename = "AuthList", alias = "authList", alias = "authorizations")]
        list: Vec<Authorization>,
    },
}

fn authorization_path(uuid: &str) -> String {
    format!("{AUTHORIZATIONS_PATH}{}/", encode(uuid))
}

pub fn run(client: &Client, cmd: AuthorizationCmd) -> anyhow::Result<()> {
    match cmd {
        AuthorizationCmd::Create(args) => {
            let created: Authorization =
                client.post_json(AUTHORIZATIONS_PATH, &create_body(&args)?)?;
            emit(&format!("Creating authorization {}\n", describe(&created)))
        }
        AuthorizationCmd::Rm(args) => {
            emit(&format!("Deleting authorization {}\n", args.name))?;
            client
                .delete_path(&authorization_path(&args.name))
                .map_err(Into::into)
        }
        AuthorizationCmd::Inspect(args) => {
            let authz: Authorization = client.get_json(&authorization_path(&args.name))?;
            emit(&to_json(&authz)?)
        }
        AuthorizationCmd::Ls(format) => {
            let mut list = match client.get_json::<List>(AUTHORIZATIONS_PATH)? {
                List::Bare(list) | List::Wrapped { list } => list,
            };
            list.sort_by(|a, b| {
                (&a.principal_name, &a.tenant_name, &a.uuid).cmp(&(
                    &b.principal_name,
                    &b.tenant_name,
                    &b.uuid,
                ))
            });
            emit(&render_list(&list, format, |a| &a.uuid, table)?)
        }
    }
}

/// The request of `authorization create`; an ops role names its tenant, an admin role none.
pub fn create_body(args: &AuthorizationCreate) -> anyhow::Result<Value> {
    let tenant = args.tenant.clone().unwrap_or_default();
    match (args.role.as_str(), tenant.is_empty()) {
        ("ops", true) => bail!("an ops authorization needs --tenant"),
        ("admin", false) => bail!("--tenant applies to the ops role only: admin is every tenant's"),
        _ => {}
    }
    Ok(serde_json::json!({
        "principalName": args.principal,
        "local": !args.ldap,
        "role": args.role,
        "tenantName": tenant,
    }))
}

/// `<uuid>: <role> [of tenant <t>] for <local user|LDAP group> <name>`.
fn describe(a: &Authorization) -> String {
    let kind = if a.local { "local user" } else { "LDAP group" };
    let scope = if a.tenant_name.is_empty() {
        String::new()
    } else {
        format!(" of tenant {}", a.tenant_name)
    };
    format!(
        "{}: {}{scope} for {kind} {}",
        a.uuid, a.role, a.principal_name
    )
}

fn table(list: &[Authorization]) -> String {
    let mut t = Table::new(
        "UUID\tPrincipal\tLocal\tRole\tTenant",
        "----\t---------\t-----\t----\t------",
    );
    for a in list {
        t.row(&[
            a.uuid.as_str(),
            &a.principal_name,
            if a.local { "yes" } else { "no" },
            &a.role,
            &a.tenant_name,
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::{parse, try_parse};

    fn create(line: &str) -> AuthorizationCreate {
        match parse(line) {
            Command::Authorization(AuthorizationCmd::Create(args)) => args,
            other => panic!("wrong command: {other:?}"),
        }
    }

    #[test]
    fn create_bodies() {
        let body = create_body(&create("authorization create alice --role ops -t blue")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "principalName": "alice", "local": true, "role": "ops", "tenantName": "blue"
            })
        );
        let body = create_body(&create("authorization create -r admin --ldap cn=admins")).unwrap();
        assert_eq!(body["local"], false);
        assert_eq!(body["tenantName"], "");
        assert_eq!(
            create_body(&create(
                "authorization create --local -role=ops -tenant=blue bob"
            ))
            .unwrap()["local"],
            true
        );
        let err = create_body(&create("authorization create alice --role ops")).unwrap_err();
        assert!(err.to_string().contains("--tenant"), "{err}");
        assert!(create_body(&create("authorization create a --role admin -t blue")).is_err());
        assert!(try_parse("authorization create alice --role root").is_err());
        assert!(try_parse("authorization create alice").is_err());
        assert!(try_parse("authorization create --local --ldap -r admin a").is_err());
    }

    #[test]
    fn answers_in_both_spellings() {
        let contiv = r#"[{"AuthzUUID":"u1","PrincipalName":"alice","Local":true,"Role":"ops","TenantName":"blue"}]"#;
        let camel = r#"{"AuthList":[{"authzUUID":"u2","principalName":"admins","local":false,"role":"admin","tenantName":""}]}"#;
        let List::Bare(a) = serde_json::from_str(contiv).unwrap() else {
            panic!("bare list");
        };
        let List::Wrapped { list: b } = serde_json::from_str(camel).unwrap() else {
            panic!("wrapped list");
        };
        assert_eq!(
            describe(&a[0]),
            "u1: ops of tenant blue for local user alice"
        );
        assert_eq!(describe(&b[0]), "u2: admin for LDAP group admins");
        let list = [a[0].clone(), b[0].clone()];
        assert_eq!(
            table(&list),
            "UUID  Principal  Local  Role   Tenant\n\
             ----  ---------  -----  ----   ------\n\
             u1    alice      yes    ops    blue\n\
             u2    admins     no     admin  \n"
        );
        // JSON output keeps Contiv's names.
        let json = serde_json::to_value(&a[0]).unwrap();
        assert_eq!(json["AuthzUUID"], "u1");
        assert_eq!(json["TenantName"], "blue");
    }

    #[test]
    fn aliases() {
        assert!(matches!(
            parse("authorization delete u1"),
            Command::Authorization(AuthorizationCmd::Rm(_))
        ));
        assert!(matches!(
            parse("authorization list -j"),
            Command::Authorization(AuthorizationCmd::Ls(f)) if f.json
        ));
    }
}
