//! Comparing flows with what `ovs-ofctl dump-flows` prints.
//!
//! OVS prints a flow as ` cookie=0x10, table=10, priority=100,ct_state=+new+trk,ip,... actions=...`:
//! header fields separated by `, `, defaults left out (`table=0`, `cookie=0x0`,
//! `priority=32768`), statistics unless `--no-stats`, and match fields in its own order. Our
//! [`Display`](std::fmt::Display) for [`Flow`](crate::Flow) prints the same field names and
//! value forms, so after [`normalize`] a rendering and a dump line are equal strings when the
//! switch holds that flow. Used by tests (ours and the agent's: "flows before and after a
//! restart are the same").

/// Header tokens that carry statistics, not identity.
const STATS: [&str; 6] = [
    "duration=",
    "n_packets=",
    "n_bytes=",
    "idle_age=",
    "hard_age=",
    "reset_counts",
];

/// Header tokens equal to OVS's defaults, which it leaves out of its dumps.
const DEFAULTS: [&str; 3] = ["table=0", "cookie=0x0", "priority=32768"];

/// One flow line (ours or a `dump-flows` line) in a canonical form: header and match tokens
/// sorted, statistics and defaults dropped, the action list unchanged.
pub fn normalize(line: &str) -> String {
    let line = line.trim();
    let (head, actions) = match line.split_once(" actions=") {
        Some((h, a)) => (h, a.trim()),
        None => (line, ""),
    };
    let mut tokens: Vec<&str> = head
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .filter(|t| !STATS.iter().any(|s| t.starts_with(s)))
        .filter(|t| !DEFAULTS.contains(t))
        .collect();
    tokens.sort_unstable();
    format!("{} actions={actions}", tokens.join(","))
}

/// Every flow line of a `dump-flows` output (or of a rendering), normalised and sorted. Lines
/// that are not flows (`OFPST_FLOW reply` headers, blank lines) are dropped.
pub fn normalize_all<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = lines
        .into_iter()
        .flat_map(str::lines)
        .filter(|l| l.contains("actions="))
        .map(normalize)
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_and_rendering_agree() {
        let dump = " cookie=0x10, duration=1.2s, table=10, n_packets=0, n_bytes=0, \
                    priority=100,ct_state=+new+trk,ip,reg1=0x5,nw_dst=10.1.1.2 \
                    actions=ct(commit,zone=NXM_NX_REG4[0..15]),goto_table:20";
        let ours =
            "cookie=0x10,table=10,priority=100,ip,ct_state=+new+trk,nw_dst=10.1.1.2,reg1=0x5 \
                    actions=ct(commit,zone=NXM_NX_REG4[0..15]),goto_table:20";
        assert_eq!(normalize(dump), normalize(ours));
        assert_eq!(
            normalize(" priority=0 actions=NORMAL"),
            normalize("cookie=0x0,table=0,priority=0 actions=NORMAL")
        );
        assert_ne!(
            normalize("table=1,priority=1 actions=output:1,output:2"),
            normalize("table=1,priority=1 actions=output:2,output:1")
        );
    }

    #[test]
    fn normalize_all_skips_headers() {
        let dump = "OFPST_FLOW reply (OF1.3) (xid=0x2):\n cookie=0x1, priority=5 actions=drop\n\n";
        assert_eq!(
            normalize_all([dump]),
            vec!["cookie=0x1,priority=5 actions=drop"]
        );
    }
}
