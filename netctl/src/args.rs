//! Argument normalisation before clap: Contiv's netctl (Go's flag package) accepts long flags with
//! one dash (`-direction=in`, `-router-ip=...`) and two-dash spellings of short flags (`--t blue`).
//! clap does not, so each token is rewritten here when, and only when, the subcommand it belongs
//! to knows the flag: `-word[=v]` becomes `--word[=v]` if `word` is one of its long names, and
//! `--c[=v]` becomes `-c[=v]` if `c` is one of its short names. Short clusters and attached
//! values (`-t blue`, `-s10.1.1.0/24`, `-qj`) are left alone.

use clap::Command;
use std::collections::HashSet;

/// The flag names one (sub)command accepts, its inherited global flags included.
#[derive(Debug, Default, Clone)]
struct KnownFlags {
    longs: HashSet<String>,
    shorts: HashSet<char>,
}

impl KnownFlags {
    /// Adds `cmd`'s own flags; `globals_only` keeps only the ones clap propagates to children.
    fn add(&mut self, cmd: &Command, globals_only: bool) {
        for arg in cmd.get_arguments() {
            if globals_only && !arg.is_global_set() {
                continue;
            }
            if let Some(long) = arg.get_long() {
                self.longs.insert(long.to_string());
            }
            for alias in arg.get_all_aliases().unwrap_or_default() {
                self.longs.insert(alias.to_string());
            }
            if let Some(short) = arg.get_short() {
                self.shorts.insert(short);
            }
            for alias in arg.get_all_short_aliases().unwrap_or_default() {
                self.shorts.insert(alias);
            }
        }
    }
}

/// Rewrites `argv` (program name first) so clap parses Contiv-style flags. Pure.
pub fn normalise(argv: Vec<String>, root: &Command) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut tokens = argv.into_iter();
    if let Some(program) = tokens.next() {
        out.push(program);
    }
    let mut cmd = root;
    let mut globals = KnownFlags::default();
    let mut known = KnownFlags::default();
    known.add(cmd, false);
    let mut rest_is_positional = false;
    for token in tokens {
        if rest_is_positional {
            out.push(token);
            continue;
        }
        if token == "--" {
            rest_is_positional = true;
            out.push(token);
            continue;
        }
        if token.starts_with('-') {
            out.push(rewrite_flag(token, &known));
            continue;
        }
        if let Some(sub) = cmd.find_subcommand(&token) {
            globals.add(cmd, true);
            cmd = sub;
            known = globals.clone();
            known.add(cmd, false);
        }
        out.push(token);
    }
    out
}

/// One flag token, rewritten if the current command knows it under the other dash count.
fn rewrite_flag(token: String, known: &KnownFlags) -> String {
    if let Some(body) = token.strip_prefix("--") {
        let name = body.split_once('=').map_or(body, |(n, _)| n);
        let mut chars = name.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            if known.shorts.contains(&c) {
                return format!("-{body}");
            }
        }
        return token;
    }
    let body = &token[1..];
    let name = body.split_once('=').map_or(body, |(n, _)| n);
    if name.chars().count() > 1 && known.longs.contains(name) {
        return format!("-{token}");
    }
    token
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::CommandFactory;

    fn norm(line: &str) -> Vec<String> {
        let argv = std::iter::once("netctl")
            .chain(line.split_whitespace())
            .map(String::from)
            .collect();
        normalise(argv, &Cli::command())
    }

    fn joined(line: &str) -> String {
        norm(line)[1..].join(" ")
    }

    #[test]
    fn one_dash_long_flags_of_the_tutorial() {
        assert_eq!(
            joined("policy rule-add db-policy 2 -direction=in -protocol=tcp -port=8888 -action=allow -priority=10"),
            "policy rule-add db-policy 2 --direction=in --protocol=tcp --port=8888 --action=allow --priority=10"
        );
        assert_eq!(
            joined("group create contiv-net db-group -policy=db-policy"),
            "group create contiv-net db-group --policy=db-policy"
        );
        assert_eq!(
            joined("bgp create host1 -router-ip=50.1.1.1/24 --as=65002 --neighbor-as=500 --neighbor=50.1.1.2"),
            "bgp create host1 --router-ip=50.1.1.1/24 --as=65002 --neighbor-as=500 --neighbor=50.1.1.2"
        );
        assert_eq!(
            joined("bgp create host1 -as 65002"),
            "bgp create host1 --as 65002"
        );
    }

    #[test]
    fn short_flags_and_clusters_stay() {
        assert_eq!(
            joined("net create -t blue -s 10.1.1.0/24 -g 10.1.1.254 contiv-net"),
            "net create -t blue -s 10.1.1.0/24 -g 10.1.1.254 contiv-net"
        );
        assert_eq!(
            joined("net create -p 112 -e vlan -s10.1.3.0/24 x"),
            "net create -p 112 -e vlan -s10.1.3.0/24 x"
        );
        assert_eq!(joined("net ls -qj"), "net ls -qj");
        assert_eq!(joined("net ls -t=blue"), "net ls -t=blue");
    }

    #[test]
    fn multi_letter_short_names_of_contiv() {
        assert_eq!(
            joined("net create -s6 2001:db8::/64 -g6 2001:db8::1 -tag t x"),
            "net create --s6 2001:db8::/64 --g6 2001:db8::1 --tag t x"
        );
        assert_eq!(
            joined("service create s -ip=10.1.1.9"),
            "service create s --ip=10.1.1.9"
        );
    }

    #[test]
    fn flags_are_per_subcommand() {
        // `-port` is a long flag of rule-add and service create, not of net create.
        assert_eq!(joined("net create -port x"), "net create -port x");
        // `-direction` is unknown before the subcommand is reached.
        assert_eq!(joined("-direction=in policy"), "-direction=in policy");
        // Aliases of subcommands are followed (`net` = `network`, `delete` = `rm`).
        assert_eq!(
            joined("network delete -tenant=blue x"),
            "network delete --tenant=blue x"
        );
    }

    #[test]
    fn global_flags_are_known_everywhere() {
        assert_eq!(
            joined("-netmaster=http://h:1 tenant ls"),
            "--netmaster=http://h:1 tenant ls"
        );
        assert_eq!(
            joined("tenant ls -netmaster http://h:1"),
            "tenant ls --netmaster http://h:1"
        );
    }

    #[test]
    fn two_dash_short_flags() {
        assert_eq!(joined("net ls --t blue --j"), "net ls -t blue -j");
        assert_eq!(joined("net ls --t=blue"), "net ls -t=blue");
        assert_eq!(joined("net ls --x"), "net ls --x");
    }

    #[test]
    fn after_double_dash_nothing_changes() {
        assert_eq!(
            joined("tenant create -- -direction"),
            "tenant create -- -direction"
        );
    }
}
