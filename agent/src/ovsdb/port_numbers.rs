//! OpenFlow port numbers the agent picks for its ports (OVSDB's `ofport_request`): free ones,
//! not reused right after a port goes.

use std::collections::{BTreeMap, BTreeSet};

/// The highest OpenFlow port number OVS accepts in `ofport_request`.
const MAX_OFPORT: u32 = 65_279;

/// OpenFlow port numbers this agent asks OVS for (`ofport_request`), so an attach knows its
/// port's number when the OVSDB transaction commits and can install the flows while
/// ovs-vswitchd is still adding the port, instead of after.
#[derive(Debug, Default)]
pub(super) struct PortNumbers {
    /// Read from OVSDB once (every interface's number and request), then kept here.
    loaded: bool,
    used: BTreeSet<u32>,
    by_name: BTreeMap<String, u32>,
    /// Where the next search starts: numbers are not reused right after a port goes, so flows
    /// of a removed port and a new one never meet on one number.
    next: u32,
}

impl PortNumbers {
    pub fn loaded(&self) -> bool {
        self.loaded
    }

    /// Takes what OVSDB holds: each interface's name with its number and requested number.
    /// Only the first load counts (two attaches may both have read OVSDB).
    pub fn load(&mut self, rows: Vec<(String, Vec<u32>)>) {
        if self.loaded {
            return;
        }
        for (name, list) in rows {
            for n in list {
                self.used.insert(n);
                self.by_name.insert(name.clone(), n);
            }
        }
        self.next = self.used.last().map_or(1, |n| n + 1);
        self.loaded = true;
    }

    pub fn take(&mut self, name: &str) -> Option<u32> {
        let start = self.next.clamp(1, MAX_OFPORT);
        let n = (start..=MAX_OFPORT)
            .chain(1..start)
            .find(|n| !self.used.contains(n))?;
        self.used.insert(n);
        self.by_name.insert(name.to_string(), n);
        self.next = if n == MAX_OFPORT { 1 } else { n + 1 };
        Some(n)
    }

    pub fn free(&mut self, name: &str) {
        if let Some(n) = self.by_name.remove(name) {
            self.used.remove(&n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_numbers_skip_used_ones_wrap_and_are_not_reused_at_once() {
        let mut n = PortNumbers {
            loaded: true,
            used: BTreeSet::from([1, 2, 4]),
            next: 1,
            ..PortNumbers::default()
        };
        assert_eq!(n.take("a"), Some(3));
        assert_eq!(n.take("b"), Some(5));
        n.free("a");
        // 3 is free again, but the search goes on from where it stopped.
        assert_eq!(n.take("c"), Some(6));
        n.next = MAX_OFPORT;
        assert_eq!(n.take("d"), Some(MAX_OFPORT));
        assert_eq!(n.take("e"), Some(3), "wraps to the lowest free number");
        n.used = (1..=MAX_OFPORT).collect();
        assert_eq!(n.take("f"), None);
    }
}
