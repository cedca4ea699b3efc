//! The command line, as Contiv's netctl defines it (netctl/commands.go): the same commands,
//! aliases, flags, short names and defaults. Contiv's multi-letter short names (`-s6`, `-tag`,
//! `-ip`) are long aliases here; [`crate::args`] turns their one-dash spelling into two dashes.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Contiv's netctl default: the netmaster on this host.
pub const DEFAULT_NETMASTER: &str = "http://localhost:9999";

#[derive(Debug, Parser)]
#[command(
    name = "netctl",
    about = "Command line interface to the netmaster (command-compatible with Contiv's netctl)",
    version,
    disable_version_flag = true
)]
pub struct Cli {
    /// Print the version (Contiv's `-v/--version`)
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    pub version: Option<bool>,
    /// The URL of the netmaster; several, comma-separated, for masters of one control plane
    /// (a failed request goes to the next)
    #[arg(long, env = "NETMASTER", default_value = DEFAULT_NETMASTER, global = true)]
    pub netmaster: String,
    /// If true, strict certificate checking will be disabled (and a token may go over plain HTTP)
    #[arg(long, env = "INSECURE", global = true)]
    pub insecure: bool,
    /// PEM file of a CA (or the self-signed certificate) to trust beside the system's roots
    #[arg(long, env = "NETCTL_CACERT", global = true, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Version Information
    Version,
    /// Authenticate to the netmaster; the token is saved for its URL
    Login(LoginArgs),
    /// Revoke the token of this netmaster and forget it
    Logout,
    /// Local user management (admins)
    #[command(subcommand)]
    User(UserCmd),
    /// Authorizations: which principal is admin, or ops of which tenant (admins)
    #[command(subcommand)]
    Authorization(AuthorizationCmd),
    /// Endpoint Group manipulation tools
    #[command(subcommand)]
    Group(GroupCmd),
    /// Endpoint Inspection
    #[command(subcommand, visible_alias = "ep")]
    Endpoint(EndpointCmd),
    /// Network profile manipulation tools
    #[command(subcommand)]
    Netprofile(NetprofileCmd),
    /// Network manipulation tools
    #[command(subcommand, visible_alias = "net")]
    Network(NetworkCmd),
    /// Tenant manipulation tools
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Policy manipulation tools
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// External contracts
    #[command(subcommand, name = "external-contracts")]
    ExternalContracts(ExtContractsCmd),
    /// Global information
    #[command(subcommand)]
    Global(GlobalCmd),
    /// ACI Gateway information
    #[command(subcommand, name = "aci-gw")]
    AciGw(AciGwCmd),
    /// Router capability configuration
    #[command(subcommand)]
    Bgp(BgpCmd),
    /// Application Profile manipulation tools
    #[command(subcommand, name = "app-profile")]
    AppProfile(AppProfileCmd),
    /// Service object creation
    #[command(subcommand)]
    Service(ServiceCmd),
}

/// `-t/--tenant`, default `default`.
#[derive(Debug, Clone, Args)]
pub struct TenantArg {
    /// Name of the tenant
    #[arg(short, long, default_value = fabric_model::DEFAULT_TENANT)]
    pub tenant: String,
}

/// The flags of every `ls`: tenant, all, json, quiet.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// List all items
    #[arg(short, long)]
    pub all: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// `-j/--json` and `-q/--quiet`.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct FormatArgs {
    /// Output list in JSON format
    #[arg(short, long)]
    pub json: bool,
    /// Only display name field
    #[arg(short, long)]
    pub quiet: bool,
}

/// A command on one named object of a tenant (`inspect`, `rm`).
#[derive(Debug, Clone, Args)]
pub struct NamedInTenant {
    #[command(flatten)]
    pub tenant: TenantArg,
    pub name: String,
}

/// A command on one object named without a tenant.
#[derive(Debug, Clone, Args)]
pub struct Named {
    pub name: String,
}

/// Info commands (`global info`, `aci-gw info`): Contiv accepts tenant and all, and ignores them.
#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// List all items
    #[arg(short, long)]
    pub all: bool,
    /// Output list in JSON format
    #[arg(short, long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Create an endpoint group
    Create(GroupCreate),
    /// Inspect a EndpointGroup
    Inspect(NamedInTenant),
    /// Delete an endpoint group
    #[command(visible_alias = "delete")]
    Rm(NamedInTenant),
    /// List endpoint groups
    #[command(visible_alias = "list")]
    Ls(ListArgs),
}

#[derive(Debug, Clone, Args)]
pub struct GroupCreate {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Policy (repeatable)
    #[arg(short, long)]
    pub policy: Vec<String>,
    /// Network profile
    #[arg(short = 'n', long)]
    pub networkprofile: Option<String>,
    /// External contract (repeatable)
    #[arg(short, long = "external-contract")]
    pub external_contract: Vec<String>,
    /// IP Address range, example 10.36.0.1-10.36.0.10
    #[arg(short = 'r', long = "ip-pool")]
    pub ip_pool: Option<String>,
    /// Configured Group Tag
    #[arg(long = "epg-tag", visible_alias = "tag")]
    pub epg_tag: Option<String>,
    pub network: String,
    pub group: String,
}

#[derive(Debug, Subcommand)]
pub enum EndpointCmd {
    /// Inspect an Endpoint
    Inspect(Named),
}

#[derive(Debug, Subcommand)]
pub enum NetprofileCmd {
    /// Create a network profile
    Create(NetprofileCreate),
    /// Delete a network profile
    #[command(visible_alias = "delete")]
    Rm(NamedInTenant),
    /// List network profile
    #[command(visible_alias = "list")]
    Ls(ListArgs),
    /// Inspect network profile
    Inspect(NamedInTenant),
}

#[derive(Debug, Clone, Args)]
pub struct NetprofileCreate {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Bandwidth (e.g., 10 kbps, 100 mbps, 1gbps)
    #[arg(short, long)]
    pub bandwidth: Option<String>,
    /// DSCP
    #[arg(short, long, default_value_t = 0)]
    pub dscp: i64,
    /// Burst size (must be in kilobytes)
    #[arg(short = 's', long, default_value_t = 0)]
    pub burst: i64,
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// List networks
    #[command(visible_alias = "list")]
    Ls(ListArgs),
    /// Inspect a Network
    Inspect(NamedInTenant),
    /// Delete a network
    #[command(visible_alias = "delete")]
    Rm(NamedInTenant),
    /// Create a network
    Create(NetworkCreate),
}

#[derive(Debug, Clone, Args)]
pub struct NetworkCreate {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Network Type (infra or data)
    #[arg(short = 'n', long = "nw-type", default_value = "data")]
    pub nw_type: String,
    /// Encap type (vlan or vxlan)
    #[arg(short, long, default_value = "vxlan")]
    pub encap: String,
    /// Packet tag (Vlan ID/VNI)
    #[arg(short, long = "pkt-tag", default_value_t = 0)]
    pub pkt_tag: i64,
    /// Subnet CIDR - REQUIRED
    #[arg(short, long)]
    pub subnet: Option<String>,
    /// Gateway
    #[arg(short, long)]
    pub gateway: Option<String>,
    /// IPv6 Subnet CIDR
    #[arg(long, visible_alias = "s6")]
    pub subnetv6: Option<String>,
    /// IPv6 Gateway
    #[arg(long, visible_alias = "g6")]
    pub gatewayv6: Option<String>,
    /// Configured Network Tag
    #[arg(long = "nw-tag", visible_alias = "tag")]
    pub nw_tag: Option<String>,
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum TenantCmd {
    /// List tenants
    #[command(visible_alias = "list")]
    Ls(FormatArgs),
    /// Delete a tenant
    #[command(visible_alias = "delete")]
    Rm(Named),
    /// Create a tenant
    Create(Named),
    /// Inspect a tenant
    Inspect(Named),
}

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Create a new policy
    Create(NamedInTenant),
    /// Delete a policy
    #[command(visible_alias = "delete")]
    Rm(NamedInTenant),
    /// List policies
    #[command(visible_alias = "list")]
    Ls(ListArgs),
    /// Inspect a policy
    Inspect(NamedInTenant),
    /// List rules for a given tenant,policy
    #[command(name = "rule-ls")]
    RuleLs(RuleLs),
    /// Delete a rule from the policy
    #[command(name = "rule-rm")]
    RuleRm(RuleRef),
    /// Add a new rule to the policy
    #[command(name = "rule-add")]
    RuleAdd(Box<RuleAdd>),
}

#[derive(Debug, Clone, Args)]
pub struct RuleLs {
    #[command(flatten)]
    pub tenant: TenantArg,
    #[command(flatten)]
    pub format: FormatArgs,
    pub policy: String,
}

#[derive(Debug, Clone, Args)]
pub struct RuleRef {
    #[command(flatten)]
    pub tenant: TenantArg,
    pub policy: String,
    pub rule_id: String,
}

#[derive(Debug, Clone, Args)]
pub struct RuleAdd {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Priority Indicator
    #[arg(short, long, default_value_t = 1)]
    pub priority: i64,
    /// Direction of traffic (in/out)
    #[arg(short, long, default_value = "in")]
    pub direction: String,
    /// From Endpoint Group Name (Valid in incoming direction only)
    #[arg(short = 'g', long = "from-group")]
    pub from_group: Option<String>,
    /// To Endpoint Group Name (Valid in outgoing direction only)
    #[arg(short = 'e', long = "to-group")]
    pub to_group: Option<String>,
    /// From Network name (Valid in incoming direction only)
    #[arg(short = 'n', long = "from-network")]
    pub from_network: Option<String>,
    /// To Network name (Valid in outgoing direction only)
    #[arg(short = 'o', long = "to-network")]
    pub to_network: Option<String>,
    /// From IP address/CIDR (Valid in incoming direction only)
    #[arg(short = 'i', long = "from-ip-address")]
    pub from_ip_address: Option<String>,
    /// To IP address/CIDR (Valid in outgoing direction only)
    #[arg(short = 's', long = "to-ip-address")]
    pub to_ip_address: Option<String>,
    /// Protocol (e.g., tcp, udp, icmp)
    #[arg(short = 'l', long)]
    pub protocol: Option<String>,
    /// Port
    #[arg(short = 'P', long, default_value_t = 0)]
    pub port: i64,
    /// Action to take (allow or deny)
    #[arg(short = 'j', long, default_value = "allow")]
    pub action: String,
    pub policy: String,
    pub rule_id: String,
}

#[derive(Debug, Subcommand)]
pub enum ExtContractsCmd {
    /// List external contracts
    #[command(visible_alias = "list")]
    Ls(ListArgs),
    /// Delete external contracts
    #[command(visible_alias = "delete")]
    Rm(NamedInTenant),
    /// Create external contracts
    Create(ExtContractsCreate),
}

#[derive(Debug, Clone, Args)]
pub struct ExtContractsCreate {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// External contracts type - consumed
    #[arg(short, long)]
    pub consumed: bool,
    /// External contracts type - provided
    #[arg(short, long)]
    pub provided: bool,
    /// Contract (repeatable)
    #[arg(short = 'a', long)]
    pub contract: Vec<String>,
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum GlobalCmd {
    /// Show global information
    Info(InfoArgs),
    /// Inspect Global Operational Information
    Inspect,
    /// Set global parameters
    Set(GlobalSet),
}

#[derive(Debug, Clone, Default, Args)]
pub struct GlobalSet {
    /// Fabric mode (aci, aci-opflex or default)
    #[arg(short = 'f', long = "fabric-mode")]
    pub fabric_mode: Option<String>,
    /// Allowed Vlan id range
    #[arg(short = 'v', long = "vlan-range")]
    pub vlan_range: Option<String>,
    /// Allowed Vxlan VNID range
    #[arg(short = 'x', long = "vxlan-range")]
    pub vxlan_range: Option<String>,
    /// Forwarding mode (bridge,routing)
    #[arg(short = 'b', long = "fwd-mode")]
    pub fwd_mode: Option<String>,
    /// ARP mode (proxy,flood)
    #[arg(short = 'a', long = "arp-mode")]
    pub arp_mode: Option<String>,
    /// Select a /16 private subnet for host access [master's default: 172.19.0.0/16]
    #[arg(short = 's', long = "private-subnet")]
    pub private_subnet: Option<String>,
    /// AS of the masters' route reflectors and of every agent's sessions to them (ours, not
    /// Contiv's) [default: 65000]
    #[arg(long = "fabric-as")]
    pub fabric_as: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AciGwCmd {
    /// Show aci gateway information
    Info(InfoArgs),
    /// Inspect aci gateway operational information
    Inspect,
    /// Set aci-gw parameters
    Set(AciGwSet),
}

#[derive(Debug, Clone, Args)]
pub struct AciGwSet {
    /// Blank or comma separated paths of the form topology/pod-1/paths-101/pathep-[eth1/14]
    #[arg(short, long = "path-bindings", default_value = "")]
    pub path_bindings: String,
    /// Blank or comma separated nodes of the form topology/pod-1/node-101
    #[arg(short, long = "node-bindings", default_value = "")]
    pub node_bindings: String,
    /// ACI physical domain name (e.g. containerDom)
    #[arg(short = 'd', long = "phys-dom", default_value = "")]
    pub phys_dom: String,
    /// Should security policies be enforced (yes,no)
    #[arg(short, long = "enforce-policies", default_value = "yes")]
    pub enforce_policies: String,
    /// Should gateway look up objects in common tenant as well (yes,no)
    #[arg(short, long = "include-common-tenant", default_value = "no")]
    pub include_common_tenant: String,
}

#[derive(Debug, Subcommand)]
pub enum BgpCmd {
    /// List BGP configuration
    #[command(visible_alias = "list")]
    Ls(FormatArgs),
    /// Delete BGP configuration
    #[command(visible_alias = "delete")]
    Rm(Named),
    /// Add BGP configuration
    Create(BgpCreate),
    /// Inspect Bgp
    Inspect(Named),
}

#[derive(Debug, Clone, Args)]
pub struct BgpCreate {
    /// BGP my-router ip (a.b.c.d/len)
    #[arg(long = "router-ip", default_value = "")]
    pub router_ip: String,
    /// Self AS id
    #[arg(long = "as", default_value = "")]
    pub as_number: String,
    /// BGP neighbor AS id
    #[arg(long = "neighbor-as", default_value = "")]
    pub neighbor_as: String,
    /// BGP neighbor to be added
    #[arg(long, default_value = "")]
    pub neighbor: String,
    pub hostname: String,
}

#[derive(Debug, Subcommand)]
pub enum AppProfileCmd {
    /// Create an application profile
    Create(AppProfileWrite),
    /// Update an application profile
    Update(AppProfileWrite),
    /// Delete an application profile
    #[command(visible_alias = "delete")]
    Rm(NamedInTenant),
    /// List Application Profiles
    #[command(visible_alias = "list")]
    Ls(ListArgs),
    /// List groups in an app-profile
    #[command(name = "group-ls", visible_alias = "group-list")]
    GroupLs(AppProfileGroupLs),
}

#[derive(Debug, Clone, Args)]
pub struct AppProfileWrite {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Endpoint Group List (separated by commas)
    #[arg(short, long, default_value = "")]
    pub group: String,
    pub name: String,
}

#[derive(Debug, Clone, Args)]
pub struct AppProfileGroupLs {
    #[command(flatten)]
    pub list: ListArgs,
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCmd {
    /// List service objects
    #[command(visible_alias = "list")]
    Ls(ListArgs),
    /// Inspect a service
    Inspect(NamedInTenant),
    /// Delete service object
    #[command(visible_alias = "delete")]
    Rm(NamedInTenant),
    /// Create Service object
    Create(ServiceCreate),
}

#[derive(Debug, Clone, Args)]
pub struct ServiceCreate {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Service network name
    #[arg(short = 's', long, default_value = "")]
    pub network: String,
    /// Service selector, repeatable: --selector=key1=value1 --selector=key2=value2
    #[arg(short = 'l', long)]
    pub selector: Vec<String>,
    /// Service/provider port, repeatable: --port=svcPort:provPort:protocol
    #[arg(short, long)]
    pub port: Vec<String>,
    /// Preferred ip address
    #[arg(long = "preferred-ip", visible_alias = "ip", default_value = "")]
    pub preferred_ip: String,
    pub name: String,
}

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// User name (asked on the terminal when absent)
    #[arg(short, long)]
    pub username: Option<String>,
    /// Read the password from standard input (for scripts)
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
}

/// How a command gets a password: `-p`, standard input, or a prompt.
#[derive(Debug, Clone, Default, Args)]
pub struct PasswordArgs {
    /// The password (visible to other local users in the process list: prefer the prompt)
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input (for scripts)
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a local user
    Create(UserCreate),
    /// List local users
    #[command(visible_alias = "list")]
    Ls(FormatArgs),
    /// Delete a local user
    #[command(visible_alias = "delete")]
    Rm(Named),
    /// Change a local user's password, names or state
    Update(UserUpdate),
    /// Inspect a local user
    Inspect(Named),
}

#[derive(Debug, Clone, Args)]
pub struct UserCreate {
    #[command(flatten)]
    pub password: PasswordArgs,
    /// First name
    #[arg(long = "first-name")]
    pub first_name: Option<String>,
    /// Last name
    #[arg(long = "last-name")]
    pub last_name: Option<String>,
    /// Create the user disabled (it cannot log in)
    #[arg(long)]
    pub disable: bool,
    pub username: String,
}

#[derive(Debug, Clone, Args)]
pub struct UserUpdate {
    #[command(flatten)]
    pub password: PasswordArgs,
    /// Ask for a new password on the terminal
    #[arg(long = "password-prompt", conflicts_with_all = ["password", "password_stdin"])]
    pub password_prompt: bool,
    /// First name
    #[arg(long = "first-name")]
    pub first_name: Option<String>,
    /// Last name
    #[arg(long = "last-name")]
    pub last_name: Option<String>,
    /// Disable the user: it cannot log in and its tokens stop working
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
    /// Enable a disabled user
    #[arg(long)]
    pub enable: bool,
    pub username: String,
}

#[derive(Debug, Subcommand)]
pub enum AuthorizationCmd {
    /// Give a principal (local user or LDAP group) a role
    Create(AuthorizationCreate),
    /// List authorizations
    #[command(visible_alias = "list")]
    Ls(FormatArgs),
    /// Delete an authorization (by its UUID)
    #[command(visible_alias = "delete")]
    Rm(Named),
    /// Inspect an authorization (by its UUID)
    Inspect(Named),
}

#[derive(Debug, Clone, Args)]
pub struct AuthorizationCreate {
    /// Role: admin (everything) or ops (the tenant's objects)
    #[arg(short, long, value_parser = ["admin", "ops"])]
    pub role: String,
    /// Tenant of an ops role
    #[arg(short, long)]
    pub tenant: Option<String>,
    /// The principal is a local user (the default)
    #[arg(long, conflicts_with = "ldap")]
    pub local: bool,
    /// The principal is an LDAP group
    #[arg(long)]
    pub ldap: bool,
    /// User name, or LDAP group with --ldap
    pub principal: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn tls_flags_are_global() {
        let cli = Cli::try_parse_from([
            "netctl",
            "tenant",
            "ls",
            "--netmaster",
            "https://m:9999",
            "--cacert",
            "/etc/netmaster/ca.pem",
            "--insecure",
        ])
        .unwrap();
        assert_eq!(cli.netmaster, "https://m:9999");
        assert_eq!(
            cli.cacert.as_deref(),
            Some(std::path::Path::new("/etc/netmaster/ca.pem"))
        );
        assert!(cli.insecure);
    }
}
