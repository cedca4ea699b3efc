//! Conjunctive matches: stable conjunction ids and the merging of clause flows.
//!
//! A rule attached to several groups with a peer of several prefixes would need
//! groups × prefixes flows; as a conjunction it needs groups + prefixes + 1. Several rules may
//! need the same clause flow (same table, priority and match): it becomes one flow carrying
//! several `conjunction` actions. A plain flow with the same key always subsumes a clause flow
//! (same priority means same action, and the plain flow matches a superset), so it replaces it.

use std::collections::{BTreeMap, BTreeSet};

use openflow::{Action, Flow, FlowKey, Match};

/// Allocates conjunction ids from rule keys: a hash, so a rule keeps its id when others come
/// and go (the flow-writer then leaves its flows alone), probing past collisions in key order.
#[derive(Default)]
pub struct ConjIds {
    used: BTreeSet<u32>,
}

impl ConjIds {
    pub fn id(&mut self, key: &str) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        for b in key.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        // Keep clear of 0 (no conjunction).
        let mut id = h.max(1);
        while !self.used.insert(id) {
            id = id.checked_add(1).unwrap_or(1);
        }
        id
    }
}

enum Entry {
    Plain {
        actions: Vec<Action>,
        goto: Option<u8>,
    },
    Clauses(Vec<Action>),
}

/// The flows of the policy tables, keyed so that equal keys merge.
#[derive(Default)]
pub struct PolicyFlows {
    flows: BTreeMap<FlowKey, Entry>,
}

impl PolicyFlows {
    /// A flow that acts on its own (`actions`, then `goto`; neither means drop).
    pub fn plain(
        &mut self,
        table: u8,
        priority: u16,
        matches: Match,
        actions: Vec<Action>,
        goto: Option<u8>,
    ) {
        let key = FlowKey {
            table,
            priority,
            matches,
        };
        self.flows.insert(key, Entry::Plain { actions, goto });
    }

    /// One value of clause `clause` (1-based) of conjunction `id` with `n` clauses.
    pub fn clause(&mut self, table: u8, priority: u16, matches: Match, id: u32, clause: u8, n: u8) {
        let key = FlowKey {
            table,
            priority,
            matches,
        };
        let action = Action::Conjunction {
            id,
            clause,
            n_clauses: n,
        };
        match self.flows.entry(key).or_insert(Entry::Clauses(Vec::new())) {
            Entry::Plain { .. } => {}
            Entry::Clauses(list) => {
                if !list.contains(&action) {
                    list.push(action);
                }
            }
        }
    }

    /// The flows, tagged with `cookie`.
    pub fn into_flows(self, cookie: u64) -> impl Iterator<Item = Flow> {
        self.flows.into_iter().map(move |(k, e)| {
            let (actions, goto_table) = match e {
                Entry::Plain { actions, goto } => (actions, goto),
                Entry::Clauses(mut list) => {
                    list.sort();
                    (list, None)
                }
            };
            Flow {
                table: k.table,
                priority: k.priority,
                matches: k.matches,
                actions,
                goto_table,
                cookie,
            }
        })
    }
}
