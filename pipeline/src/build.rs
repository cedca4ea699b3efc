//! Small constructors the table modules share: a flow with the input's cookie, register loads
//! and matches, the match prerequisites of IPv4 and ARP.

use openflow::flow::{ct_state, proto};
use openflow::{Action, Field, Flow, Masked, Match};

/// Collects the flows of the pipeline, all tagged with one cookie.
pub struct Flows {
    cookie: u64,
    pub out: Vec<Flow>,
}

impl Flows {
    pub fn new(cookie: u64) -> Self {
        Flows {
            cookie,
            out: Vec::new(),
        }
    }

    /// Adds a flow; no actions and no `goto` means drop.
    pub fn add(
        &mut self,
        table: u8,
        priority: u16,
        matches: Match,
        actions: Vec<Action>,
        goto: Option<u8>,
    ) {
        self.out.push(Flow {
            table,
            priority,
            matches,
            actions,
            goto_table: goto,
            cookie: self.cookie,
        });
    }

    /// A flow that only continues in `next`.
    pub fn goto(&mut self, table: u8, priority: u16, matches: Match, next: u8) {
        self.add(table, priority, matches, Vec::new(), Some(next));
    }

    /// A flow that drops what it matches.
    pub fn drop(&mut self, table: u8, priority: u16, matches: Match) {
        self.add(table, priority, matches, Vec::new(), None);
    }
}

/// `load:value->reg`.
pub fn set_reg(reg: u8, value: u32) -> Action {
    Action::SetField {
        field: Field::Reg(reg),
        value: u64::from(value),
    }
}

/// `load:mac->field`.
pub fn set_mac(field: Field, mac: [u8; 6]) -> Action {
    Action::SetField {
        field,
        value: mac_u64(mac),
    }
}

/// A MAC as the low 48 bits of a u64.
pub fn mac_u64(mac: [u8; 6]) -> u64 {
    mac.iter().fold(0, |acc, b| (acc << 8) | u64::from(*b))
}

/// Copies a whole field of `n_bits` bits.
pub fn mov(src: Field, dst: Field, n_bits: u16) -> Action {
    Action::Move {
        src,
        src_ofs: 0,
        dst,
        dst_ofs: 0,
        n_bits,
    }
}

/// Matches register `reg` exactly.
pub fn with_reg(mut m: Match, reg: u8, value: u32) -> Match {
    m.regs[usize::from(reg)] = Some(Masked::exact(value));
    m
}

/// Any IPv4 packet.
pub fn ipv4() -> Match {
    Match {
        eth_type: Some(proto::ETH_IPV4),
        ..Match::default()
    }
}

/// Any ARP packet.
pub fn arp() -> Match {
    Match {
        eth_type: Some(proto::ETH_ARP),
        ..Match::default()
    }
}

/// Matches tracked packets whose state has all of `bits` set.
pub fn ct_has(mut m: Match, bits: u32) -> Match {
    let v = bits | ct_state::TRACKED;
    m.ct_state = Some(Masked::with_mask(v, v));
    m
}

/// An IPv4 prefix as a match value (exact for a /32, host bits of `net` ignored).
pub fn prefix(net: ipnet::Ipv4Net) -> Masked<std::net::Ipv4Addr> {
    if net.prefix_len() == 32 {
        Masked::exact(net.network())
    } else {
        Masked::with_mask(net.network(), net.netmask())
    }
}
