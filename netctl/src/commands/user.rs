//! `netctl user create|ls|rm|update|inspect`: Contiv auth_proxy's local users
//! (`/api/v1/auth_proxy/local_users/`, fields `username`, `password`, `first_name`, `last_name`,
//! `disable`).

use super::login::{password_from_stdin, prompt_password};
use super::{emit, render_list, to_json};
use crate::cli::{PasswordArgs, UserCmd, UserCreate, UserUpdate};
use crate::client::{encode, Client};
use crate::table::Table;
use anyhow::bail;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const USERS_PATH: &str = "/api/v1/auth_proxy/local_users/";

/// A local user as auth_proxy shows it (never with its password).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalUser {
    pub username: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub disable: bool,
}

fn user_path(username: &str) -> String {
    format!("{USERS_PATH}{}/", encode(username))
}

pub fn run(client: &Client, cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Create(args) => {
            let password = match given_password(&args.password)? {
                Some(password) => password,
                None => new_password_from_terminal(&args.username)?,
            };
            client.post_json::<Value>(USERS_PATH, &create_body(&args, &password))?;
            emit(&format!("Creating user {}\n", args.username))
        }
        UserCmd::Update(args) => {
            let mut password = given_password(&args.password)?;
            if args.password_prompt {
                password = Some(new_password_from_terminal(&args.username)?);
            }
            if password.is_none()
                && args.first_name.is_none()
                && args.last_name.is_none()
                && !args.disable
                && !args.enable
            {
                bail!(
                    "nothing to update: give --password, --password-stdin, --password-prompt, \
                     --first-name, --last-name, --disable or --enable"
                );
            }
            let current: LocalUser = client.get_json(&user_path(&args.username))?;
            let body = update_body(&args, &current, password.as_deref());
            client.patch_json::<Value>(&user_path(&args.username), &body)?;
            emit(&format!("Updating user {}\n", args.username))
        }
        UserCmd::Rm(args) => {
            emit(&format!("Deleting user {}\n", args.name))?;
            client
                .delete_path(&user_path(&args.name))
                .map_err(Into::into)
        }
        UserCmd::Inspect(args) => {
            let user: LocalUser = client.get_json(&user_path(&args.name))?;
            emit(&to_json(&user)?)
        }
        UserCmd::Ls(format) => {
            let mut users: Vec<LocalUser> = client.get_json(USERS_PATH)?;
            users.sort_by(|a, b| a.username.cmp(&b.username));
            emit(&render_list(&users, format, |u| &u.username, table)?)
        }
    }
}

/// `-p` or `--password-stdin`; `None` when neither was given.
fn given_password(args: &PasswordArgs) -> anyhow::Result<Option<String>> {
    if let Some(password) = &args.password {
        if password.is_empty() {
            bail!("empty password");
        }
        return Ok(Some(password.clone()));
    }
    if args.password_stdin {
        return password_from_stdin().map(Some);
    }
    Ok(None)
}

/// Asks twice on the terminal.
fn new_password_from_terminal(username: &str) -> anyhow::Result<String> {
    let first = prompt_password(&format!("Password for {username}: "))?;
    if first.is_empty() {
        bail!("empty password");
    }
    let second = prompt_password("Retype the password: ")?;
    if first != second {
        bail!("the two passwords differ");
    }
    Ok(first)
}

pub fn create_body(args: &UserCreate, password: &str) -> Value {
    serde_json::json!({
        "username": args.username,
        "password": password,
        "first_name": args.first_name.clone().unwrap_or_default(),
        "last_name": args.last_name.clone().unwrap_or_default(),
        "disable": args.disable,
    })
}

/// The whole user with the changes applied, so the update means the same to a server that
/// merges (Contiv: empty strings unchanged, `disable` always taken) and to one that replaces.
pub fn update_body(args: &UserUpdate, current: &LocalUser, password: Option<&str>) -> Value {
    let mut body = Map::new();
    body.insert("username".into(), current.username.clone().into());
    let first = args.first_name.as_ref().unwrap_or(&current.first_name);
    body.insert("first_name".into(), first.clone().into());
    let last = args.last_name.as_ref().unwrap_or(&current.last_name);
    body.insert("last_name".into(), last.clone().into());
    let disable = if args.disable {
        true
    } else if args.enable {
        false
    } else {
        current.disable
    };
    body.insert("disable".into(), disable.into());
    if let Some(password) = password {
        body.insert("password".into(), password.into());
    }
    Value::Object(body)
}

fn table(users: &[LocalUser]) -> String {
    let mut t = Table::new(
        "Username\tFirst Name\tLast Name\tDisabled",
        "--------\t----------\t---------\t--------",
    );
    for u in users {
        t.row(&[
            u.username.as_str(),
            &u.first_name,
            &u.last_name,
            if u.disable { "yes" } else { "no" },
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::{parse, try_parse};

    #[test]
    fn create_flags_and_body() {
        let Command::User(UserCmd::Create(args)) =
            parse("user create -p s3cret --first-name Ann -last-name=Ops --disable alice")
        else {
            panic!("wrong command");
        };
        assert_eq!(args.username, "alice");
        let password = given_password(&args.password).unwrap().unwrap();
        let body = create_body(&args, &password);
        assert_eq!(
            body,
            serde_json::json!({
                "username": "alice", "password": "s3cret", "first_name": "Ann",
                "last_name": "Ops", "disable": true
            })
        );
        let Command::User(UserCmd::Create(args)) = parse("user create --password-stdin bob") else {
            panic!("wrong command");
        };
        assert!(args.password.password_stdin && args.password.password.is_none());
        assert!(try_parse("user create -p x --password-stdin bob").is_err());
    }

    #[test]
    fn update_keeps_what_is_not_given() {
        let current = LocalUser {
            username: "alice".into(),
            first_name: "Ann".into(),
            last_name: "Ops".into(),
            disable: true,
        };
        let Command::User(UserCmd::Update(args)) = parse("user update --last-name New alice")
        else {
            panic!("wrong command");
        };
        assert_eq!(
            update_body(&args, &current, None),
            serde_json::json!({
                "username": "alice", "first_name": "Ann", "last_name": "New", "disable": true
            })
        );
        let Command::User(UserCmd::Update(args)) = parse("user update --enable alice") else {
            panic!("wrong command");
        };
        let body = update_body(&args, &current, Some("pw"));
        assert_eq!(
            (body["disable"].as_bool(), body["password"].as_str()),
            (Some(false), Some("pw"))
        );
        assert!(try_parse("user update --enable --disable alice").is_err());
        assert!(try_parse("user update --password-prompt -p x alice").is_err());
    }

    #[test]
    fn aliases() {
        assert!(matches!(
            parse("user delete a"),
            Command::User(UserCmd::Rm(_))
        ));
        assert!(matches!(parse("user list -q"), Command::User(UserCmd::Ls(f)) if f.quiet));
        assert!(matches!(
            parse("user inspect a"),
            Command::User(UserCmd::Inspect(_))
        ));
    }

    #[test]
    fn table_and_list_forms() {
        let users: Vec<LocalUser> = serde_json::from_str(
            r#"[{"username":"admin","first_name":"","last_name":"","disable":false},
                {"username":"alice","first_name":"Ann","last_name":"Ops","disable":true}]"#,
        )
        .unwrap();
        assert_eq!(
            table(&users),
            "Username  First Name  Last Name  Disabled\n\
             --------  ----------  ---------  --------\n\
             admin                            no\n\
             alice     Ann         Ops        yes\n"
        );
        // A user without the optional fields still reads.
        let u: LocalUser = serde_json::from_str(r#"{"username":"x"}"#).unwrap();
        assert_eq!(u.username, "x");
        assert_eq!(user_path("a b"), "/api/v1/auth_proxy/local_users/a%20b/");
    }
}
