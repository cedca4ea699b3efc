//! One module per object family. Each builds model objects from parsed flags (pure, tested
//! without a server), sends them through the [`Client`], and renders answers like Contiv.

mod aci_gw;
mod app_profile;
mod authorization;
mod bgp;
mod endpoint;
mod ext_contracts;
mod global;
mod group;
mod login;
mod netprofile;
mod network;
mod policy;
mod service;
mod tenant;
mod user;
mod version;

use crate::cli::{Cli, Command, FormatArgs, ListArgs};
use crate::client::{Client, Inspect, Options};
use crate::tokens;
use fabric_model::{Object, Tenant};
use serde::Serialize;
use std::io::Write as _;

/// Runs one parsed command line against the netmaster.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let options = Options {
        netmaster: cli.netmaster,
        insecure: cli.insecure,
        cacert: cli.cacert,
        token: None,
    };
    match cli.command {
        Command::Login(args) => login::login(&options, &args),
        Command::Logout => login::logout(&options),
        Command::User(cmd) => user::run(&connect(options)?, cmd),
        Command::Authorization(cmd) => authorization::run(&connect(options)?, cmd),
        Command::Version => version::run(&connect(options)?),
        Command::Group(cmd) => group::run(&connect(options)?, cmd),
        Command::Endpoint(cmd) => endpoint::run(&connect(options)?, cmd),
        Command::Netprofile(cmd) => netprofile::run(&connect(options)?, cmd),
        Command::Network(cmd) => network::run(&connect(options)?, cmd),
        Command::Tenant(cmd) => tenant::run(&connect(options)?, cmd),
        Command::Policy(cmd) => policy::run(&connect(options)?, cmd),
        Command::ExternalContracts(cmd) => ext_contracts::run(&connect(options)?, cmd),
        Command::Global(cmd) => global::run(&connect(options)?, cmd),
        Command::AciGw(cmd) => aci_gw::run(&connect(options)?, cmd),
        Command::Bgp(cmd) => bgp::run(&connect(options)?, cmd),
        Command::AppProfile(cmd) => app_profile::run(&connect(options)?, cmd),
        Command::Service(cmd) => service::run(&connect(options)?, cmd),
    }
}

/// The client of a command, with the token known for its netmaster (`$NETCTL_TOKEN`, the token
/// file, Contiv's config).
fn connect(mut options: Options) -> anyhow::Result<Client> {
    let urls = crate::client::netmasters(&options.netmaster)?;
    options.token = tokens::resolve_from_env(&urls)?.map(|found| found.token);
    Ok(Client::new(&options)?)
}

/// Writes to stdout; a closed pipe (`netctl net ls | head -1`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Go's `json.MarshalIndent(v, "", "  ")` followed by a newline, as Contiv prints JSON.
fn to_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

/// Prints `inspect` output for the object of type `T` with this key.
fn inspect<T: Object>(client: &Client, key: &str) -> anyhow::Result<()> {
    let answer: Inspect<T> = client.inspect(key)?;
    emit(&to_json(&answer)?)
}

/// Contiv's `ls` commands first check that the tenant exists, so a typo is an error.
fn ensure_tenant(client: &Client, tenant: &str) -> anyhow::Result<()> {
    client.get::<Tenant>(tenant)?;
    Ok(())
}

/// An object type that `ls` lists per tenant, with its name and Contiv's table.
trait TenantListed: Object {
    fn tenant(&self) -> &str;
    fn name(&self) -> &str;
    fn table(items: &[Self]) -> String;
}

/// Contiv's `ls` of a tenant's objects: check the tenant, keep its objects unless `-a`, print.
fn ls<T: TenantListed>(client: &Client, args: &ListArgs) -> anyhow::Result<()> {
    let tenant = &args.tenant.tenant;
    ensure_tenant(client, tenant)?;
    let mut items: Vec<T> = client.list()?;
    items.retain(|item| args.all || item.tenant() == tenant);
    emit(&render_list(&items, args.format, T::name, T::table)?)
}

/// A list in one of Contiv's three forms: JSON (`-j`), names (`-q`) or a table.
fn render_list<T: Serialize>(
    items: &[T],
    format: FormatArgs,
    name: fn(&T) -> &str,
    table: fn(&[T]) -> String,
) -> anyhow::Result<String> {
    if format.json {
        to_json(items)
    } else if format.quiet {
        Ok(items.iter().map(|i| format!("{}\n", name(i))).collect())
    } else {
        Ok(table(items))
    }
}

/// Go prints a `[]string` with `%v` as `[a b]`; Contiv's tables do that for list fields.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::args::normalise;
    use crate::cli::{Cli, Command};
    use clap::{CommandFactory, Parser};

    /// Parses a command line the way `main` does (shell-split on spaces).
    pub fn parse(line: &str) -> Command {
        match try_parse(line) {
            Ok(cli) => cli.command,
            Err(e) => panic!("`{line}` does not parse: {e}"),
        }
    }

    /// Like [`parse`], keeping clap's error and the global flags.
    pub fn try_parse(line: &str) -> Result<Cli, clap::Error> {
        let argv = std::iter::once("netctl")
            .chain(line.split_whitespace())
            .map(String::from)
            .collect();
        Cli::try_parse_from(normalise(argv, &Cli::command()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_model::Policy;

    fn policies() -> Vec<Policy> {
        vec![Policy {
            key: "default:p".into(),
            tenant_name: "default".into(),
            policy_name: "p".into(),
        }]
    }

    fn table(items: &[Policy]) -> String {
        format!("{} rows\n", items.len())
    }

    #[test]
    fn list_forms() {
        let name: fn(&Policy) -> &str = |p| &p.policy_name;
        let quiet = FormatArgs {
            json: false,
            quiet: true,
        };
        assert_eq!(render_list(&policies(), quiet, name, table).unwrap(), "p\n");
        let plain = FormatArgs::default();
        assert_eq!(
            render_list(&policies(), plain, name, table).unwrap(),
            "1 rows\n"
        );
        let json = FormatArgs {
            json: true,
            quiet: false,
        };
        let text = render_list(&policies(), json, name, table).unwrap();
        assert!(
            text.starts_with("[\n  {\n    \"key\": \"default:p\""),
            "{text}"
        );
        let back: Vec<Policy> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, policies());
    }

    #[test]
    fn go_list_format() {
        assert_eq!(go_list(&["a=b".into(), "c=d".into()]), "[a=b c=d]");
        assert_eq!(go_list(&[]), "[]");
    }
}
