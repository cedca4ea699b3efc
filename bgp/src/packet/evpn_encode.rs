//! Writing EVPN routes: the MP_REACH/MP_UNREACH attributes of a single UPDATE, and the
//! packer's EVPN half (routes that share attributes and next hop go out together, as many per
//! message as fit; withdrawals batched the same way).

use std::net::IpAddr;

use super::attrs::{flag, kind, PathAttrs};
use super::encode::Packer;
use super::evpn::{self, EvpnRoute};
use super::frame::{self, msg_type, HEADER_LEN};

/// Write an MP attribute (extended length) whose value is `head` then `routes`.
fn put_mp(out: &mut Vec<u8>, code: u8, head: &[u8], routes: &[EvpnRoute]) {
    let len = head.len() + routes.iter().map(EvpnRoute::encoded_len).sum::<usize>();
    out.push(flag::OPTIONAL | flag::EXTENDED_LENGTH);
    out.push(code);
    out.extend_from_slice(&(len.min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(head);
    for r in routes {
        r.encode(out);
    }
}

/// MP_REACH_NLRI for EVPN routes.
pub fn put_reach(next_hop: &IpAddr, routes: &[EvpnRoute], out: &mut Vec<u8>) {
    let mut head = Vec::with_capacity(21);
    evpn::mp_reach_head(next_hop, &mut head);
    put_mp(out, kind::MP_REACH, &head, routes);
}

/// MP_UNREACH_NLRI for EVPN routes.
pub fn put_unreach(routes: &[EvpnRoute], out: &mut Vec<u8>) {
    let mut head = Vec::with_capacity(3);
    evpn::mp_unreach_head(&mut head);
    put_mp(out, kind::MP_UNREACH, &head, routes);
}

/// How many of `routes`, from the front, fit in `room` bytes, and the bytes they take.
fn fitting(routes: &[EvpnRoute], room: usize) -> (usize, usize) {
    let mut used = 0;
    let mut count = 0;
    for r in routes {
        let l = r.encoded_len();
        if used + l > room {
            break;
        }
        used += l;
        count += 1;
    }
    (count, used)
}

impl Packer {
    /// Announce EVPN `routes` with `attrs`, whose `next_hop` is the VTEP (routes without one
    /// cannot be sent and are skipped with a warning).
    pub fn announce_evpn(&mut self, attrs: &PathAttrs, routes: &[EvpnRoute], out: &mut Vec<u8>) {
        let Some(next_hop) = attrs.next_hop else {
            tracing::warn!(
                routes = routes.len(),
                "EVPN routes without a next hop not advertised"
            );
            return;
        };
        let mut common = Vec::new();
        attrs.encode(self.ctx.four_octet_as, false, &mut common);
        let mut head = Vec::with_capacity(21);
        evpn::mp_reach_head(&next_hop, &mut head);
        // Header, the two length fields, the MP attribute's own header and head.
        let overhead = HEADER_LEN + 4 + common.len() + 4 + head.len();
        // The largest EVPN route we write (type 5 over IPv6) must fit.
        if overhead + 60 > self.ctx.max_len {
            tracing::warn!(
                attribute_bytes = common.len(),
                routes = routes.len(),
                "attributes exceed the message size; EVPN routes not advertised"
            );
            return;
        }
        let room = self.ctx.max_len - overhead;
        let mut rest = routes;
        while !rest.is_empty() {
            let (count, used) = fitting(rest, room);
            let (batch, tail) = rest.split_at(count.max(1));
            rest = tail;
            let start = frame::begin(out, msg_type::UPDATE);
            out.extend_from_slice(&[0, 0]);
            let attr_total = common.len() + 4 + head.len() + used;
            out.extend_from_slice(&(attr_total as u16).to_be_bytes());
            put_mp(out, kind::MP_REACH, &head, batch);
            out.extend_from_slice(&common);
            self.close(out, start);
        }
    }

    /// Withdraw EVPN `routes`, batched.
    pub fn withdraw_evpn(&mut self, routes: &[EvpnRoute], out: &mut Vec<u8>) {
        let overhead = HEADER_LEN + 4 + 7;
        let room = self.ctx.max_len - overhead;
        let mut rest = routes;
        while !rest.is_empty() {
            let (count, used) = fitting(rest, room);
            let (batch, tail) = rest.split_at(count.max(1));
            rest = tail;
            let start = frame::begin(out, msg_type::UPDATE);
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&((7 + used) as u16).to_be_bytes());
            put_unreach(batch, out);
            self.close(out, start);
        }
    }
}
