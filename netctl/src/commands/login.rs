//! `netctl login` and `netctl logout`: Contiv auth_proxy's login route, the token saved per
//! netmaster URL (see [`crate::tokens`]), and its revocation. With several masters in
//! `--netmaster`, the login goes to the first that answers and the token is saved for each URL
//! of the list (the masters share sessions); logout forgets it under each.

use super::emit;
use crate::cli::LoginArgs;
use crate::client::{check_credentials_allowed, netmasters, Client, ClientError, Options};
use crate::tokens::{self, Saved, Source, TokenStore, TOKEN_ENV};
use anyhow::{anyhow, bail, Context as _};
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{BufRead as _, Read as _};

/// Contiv auth_proxy's login route: `{"username", "password"}` → `{"token"}`.
pub const LOGIN_PATH: &str = "/api/v1/auth_proxy/login/";
/// Revokes the token of the request.
pub const LOGOUT_PATH: &str = "/api/v1/auth_proxy/logout/";

#[derive(Debug, Deserialize)]
struct LoginResponse {
    #[serde(default)]
    token: String,
}

pub fn login(options: &Options, args: &LoginArgs) -> anyhow::Result<()> {
    // Before asking anything: a password must not go over plain HTTP to another host, whichever
    // master of the list ends up answering.
    for url in netmasters(&options.netmaster)? {
        check_credentials_allowed(&url, options.insecure)?;
    }
    let client = Client::new(&Options {
        token: None,
        ..options.clone()
    })?;
    let store = TokenStore::from_env()?;
    // Reach the netmaster (and check its certificate) before asking anything.
    if let Err(
        e @ (ClientError::Transport { .. }
        | ClientError::Certificate { .. }
        | ClientError::AllFailed { .. }),
    ) = client.get_json::<Value>("/version")
    {
        return Err(e.into());
    }
    let username = match &args.username {
        Some(name) => name.trim().to_string(),
        None if args.password_stdin => bail!("--password-stdin needs --username"),
        None => prompt_line("Username: ")?,
    };
    if username.is_empty() {
        bail!("you must specify a username");
    }
    let password = if args.password_stdin {
        password_from_stdin()?
    } else {
        prompt_password("Password: ")?
    };
    let body = json!({ "username": username, "password": password });
    let answer: LoginResponse = match client.post_json(LOGIN_PATH, &body) {
        Err(ClientError::Unauthorized { .. }) => {
            bail!("Login failed: Bad username or password.")
        }
        other => other.context("Login failed")?,
    };
    if answer.token.is_empty() {
        bail!("Login failed: the netmaster answered no token");
    }
    store.save_all(
        client.bases(),
        Saved {
            username,
            token: answer.token,
        },
    )?;
    emit("Login succeeded.\n")
}

pub fn logout(options: &Options) -> anyhow::Result<()> {
    let urls = netmasters(&options.netmaster)?;
    let url = urls.join(",");
    let Some(found) = tokens::resolve_from_env(&urls)? else {
        bail!("not logged in to {url}: nothing to log out");
    };
    let client = Client::new(&Options {
        token: Some(found.token.clone()),
        ..options.clone()
    })?;
    let revoked = client.post_json::<Value>(LOGOUT_PATH, &json!({}));
    // A 401 means the token was already useless here (expired or revoked).
    let dead = matches!(revoked, Ok(_) | Err(ClientError::Unauthorized { .. }));
    match &found.source {
        Source::Store => {
            TokenStore::from_env()?.remove_all(&urls)?;
        }
        Source::Contiv(path) => {
            if matches!(revoked, Err(ClientError::Unauthorized { .. })) {
                // Contiv's file is not keyed by URL: its token may be another master's.
                bail!(
                    "the token of {} is not valid at {url}; the file is left as it is",
                    path.display()
                );
            }
            std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
        }
        Source::Env => {
            crate::client::warn(&format!("the token came from ${TOKEN_ENV}: unset it too"))
        }
    }
    if !dead {
        let e = revoked
            .err()
            .map_or_else(|| anyhow!("no answer"), anyhow::Error::new);
        return Err(e.context("the token is forgotten here, but the netmaster did not revoke it"));
    }
    emit("Logged out.\n")
}

/// Prints `prompt` on stderr and reads one line from stdin.
pub fn prompt_line(prompt: &str) -> anyhow::Result<String> {
    eprint!("{prompt}");
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading standard input")?;
    if read == 0 {
        bail!("no answer on standard input");
    }
    Ok(line.trim().to_string())
}

/// Asks for a password on the terminal without echo.
pub fn prompt_password(prompt: &str) -> anyhow::Result<String> {
    rpassword::prompt_password(prompt).map_err(|e| {
        anyhow!("cannot ask for the password on the terminal ({e}): use --password-stdin")
    })
}

/// The whole of standard input, less its final line break.
pub fn password_from_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .read_to_string(&mut text)
        .context("reading the password from standard input")?;
    password_from_text(&text)
}

fn password_from_text(text: &str) -> anyhow::Result<String> {
    let password = text
        .strip_suffix('\n')
        .map_or(text, |t| t.strip_suffix('\r').unwrap_or(t));
    if password.is_empty() {
        bail!("empty password on standard input");
    }
    Ok(password.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::parse;

    #[test]
    fn login_flags() {
        let Command::Login(args) = parse("login -u admin --password-stdin") else {
            panic!("wrong command");
        };
        assert_eq!(args.username.as_deref(), Some("admin"));
        assert!(args.password_stdin);
        let Command::Login(args) = parse("login --username=ops") else {
            panic!("wrong command");
        };
        assert_eq!(args.username.as_deref(), Some("ops"));
        assert!(!args.password_stdin);
        assert!(matches!(parse("logout"), Command::Logout));
    }

    #[test]
    fn stdin_password_loses_one_line_break_only() {
        assert_eq!(password_from_text("s3cret\n").unwrap(), "s3cret");
        assert_eq!(password_from_text("s3cret\r\n").unwrap(), "s3cret");
        assert_eq!(password_from_text("s3cret").unwrap(), "s3cret");
        assert_eq!(password_from_text(" a b \n\n").unwrap(), " a b \n");
        assert!(password_from_text("\n").is_err());
        assert!(password_from_text("").is_err());
    }

    #[test]
    fn no_login_over_plain_http_to_another_host() {
        let options = |url: &str, insecure| Options {
            netmaster: url.into(),
            insecure,
            ..Options::default()
        };
        let args = LoginArgs {
            username: Some("admin".into()),
            password_stdin: true,
        };
        let err = login(&options("http://10.0.0.1:9999", false), &args).unwrap_err();
        assert!(
            err.to_string().contains("refusing to send credentials"),
            "{err}"
        );
    }
}
