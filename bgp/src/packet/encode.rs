//! Our UPDATE encoder and packer: prefixes that share attributes go out together, as many
//! per message as the negotiated maximum length allows; withdrawals are batched the same way.

use std::net::IpAddr;

use super::attrs::{flag, kind, PathAttrs};
use super::frame::{self, msg_type, HEADER_LEN, MAX_LEN};
use super::prefix::{encode_nlri, nlri_len, Afi, Prefix, SAFI_UNICAST};
use super::update::Update;

/// What the session negotiated that changes how we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeCtx {
    pub four_octet_as: bool,
    pub max_len: usize,
}

impl Default for EncodeCtx {
    fn default() -> Self {
        EncodeCtx {
            four_octet_as: true,
            max_len: MAX_LEN,
        }
    }
}

/// Bytes of the MP_REACH value before its NLRI.
fn mp_reach_head(afi: Afi, attrs: &PathAttrs, out: &mut Vec<u8>) {
    out.extend_from_slice(&afi.code().to_be_bytes());
    out.push(SAFI_UNICAST);
    match attrs.next_hop {
        Some(IpAddr::V6(nh)) => match attrs.link_local_next_hop {
            Some(ll) => {
                out.push(32);
                out.extend_from_slice(&nh.octets());
                out.extend_from_slice(&ll.octets());
            }
            None => {
                out.push(16);
                out.extend_from_slice(&nh.octets());
            }
        },
        Some(IpAddr::V4(nh)) => {
            out.push(4);
            out.extend_from_slice(&nh.octets());
        }
        None => out.push(0),
    }
    out.push(0);
}

/// Write an MP attribute with extended length, value = head + NLRI.
fn put_mp_attr(out: &mut Vec<u8>, code: u8, head: &[u8], nlri: &[Prefix]) {
    let len = head.len() + nlri.iter().map(nlri_len).sum::<usize>();
    out.push(flag::OPTIONAL | flag::EXTENDED_LENGTH);
    out.push(code);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(head);
    for p in nlri {
        encode_nlri(p, out);
    }
}

/// Encode one UPDATE as given (no splitting): fixtures and small messages.
pub fn encode_update(update: &Update, ctx: EncodeCtx, out: &mut Vec<u8>) {
    let start = frame::begin(out, msg_type::UPDATE);
    let wd_at = out.len();
    out.extend_from_slice(&[0, 0]);
    for p in &update.withdrawn {
        encode_nlri(p, out);
    }
    let wd_len = (out.len() - wd_at - 2) as u16;
    out[wd_at..wd_at + 2].copy_from_slice(&wd_len.to_be_bytes());
    let at_at = out.len();
    out.extend_from_slice(&[0, 0]);
    if let Some(un) = &update.mp_unreach {
        let mut head = un.afi.code().to_be_bytes().to_vec();
        head.push(SAFI_UNICAST);
        put_mp_attr(out, kind::MP_UNREACH, &head, &un.withdrawn);
    }
    if let Some(un) = &update.evpn_unreach {
        super::evpn_encode::put_unreach(&un.routes, out);
    }
    if let Some(reach) = &update.evpn_reach {
        super::evpn_encode::put_reach(&reach.next_hop, &reach.routes, out);
    }
    if let Some(reach) = &update.mp_reach {
        let attrs = PathAttrs {
            next_hop: Some(reach.next_hop),
            link_local_next_hop: reach.link_local,
            ..PathAttrs::default()
        };
        let mut head = Vec::new();
        mp_reach_head(reach.afi, &attrs, &mut head);
        put_mp_attr(out, kind::MP_REACH, &head, &reach.nlri);
    }
    if let Some(attrs) = &update.attrs {
        attrs.encode(ctx.four_octet_as, !update.nlri.is_empty(), out);
    }
    let at_len = (out.len() - at_at - 2) as u16;
    out[at_at..at_at + 2].copy_from_slice(&at_len.to_be_bytes());
    for p in &update.nlri {
        encode_nlri(p, out);
    }
    frame::finish(out, start);
}

/// Writes packed UPDATEs into a send buffer and counts them.
#[derive(Debug, Clone, Default)]
pub struct Packer {
    pub ctx: EncodeCtx,
    pub messages: u64,
    pub bytes: u64,
    scratch: Vec<u8>,
}

impl Packer {
    pub fn new(ctx: EncodeCtx) -> Packer {
        Packer {
            ctx,
            ..Packer::default()
        }
    }

    pub(super) fn close(&mut self, out: &mut [u8], start: usize) {
        frame::finish(out, start);
        self.messages += 1;
        self.bytes += (out.len() - start) as u64;
    }

    /// Announce `prefixes` (all of `afi`) with `attrs`, in as few UPDATEs as fit.
    pub fn announce(
        &mut self,
        afi: Afi,
        attrs: &PathAttrs,
        prefixes: &[Prefix],
        out: &mut Vec<u8>,
    ) {
        let mut common = std::mem::take(&mut self.scratch);
        common.clear();
        attrs.encode(self.ctx.four_octet_as, afi == Afi::Ipv4, &mut common);
        let mut mp_head = Vec::new();
        if afi != Afi::Ipv4 {
            mp_reach_head(afi, attrs, &mut mp_head);
        }
        let mp_overhead = if afi == Afi::Ipv4 {
            0
        } else {
            4 + mp_head.len()
        };
        let overhead = HEADER_LEN + 4 + common.len() + mp_overhead;
        if overhead + 17 > self.ctx.max_len {
            // Attributes too large for any message the peer accepts: these routes cannot be
            // sent (RFC 4271 §9.2); sending an oversized UPDATE would reset the session.
            tracing::warn!(
                attribute_bytes = common.len(),
                prefixes = prefixes.len(),
                "attributes exceed the message size; routes not advertised"
            );
            self.scratch = common;
            return;
        }
        let room = self.ctx.max_len - overhead;
        let mut rest = prefixes;
        while !rest.is_empty() {
            let (count, used) = fitting(rest, room);
            let (batch, tail) = rest.split_at(count.max(1));
            rest = tail;
            let start = frame::begin(out, msg_type::UPDATE);
            out.extend_from_slice(&[0, 0]);
            let attr_total = common.len()
                + if afi == Afi::Ipv4 {
                    0
                } else {
                    mp_overhead + used
                };
            out.extend_from_slice(&(attr_total as u16).to_be_bytes());
            if afi == Afi::Ipv4 {
                out.extend_from_slice(&common);
                for p in batch {
                    encode_nlri(p, out);
                }
            } else {
                put_mp_attr(out, kind::MP_REACH, &mp_head, batch);
                out.extend_from_slice(&common);
            }
            self.close(out, start);
        }
        self.scratch = common;
    }

    /// Withdraw `prefixes` (all of `afi`), batched.
    pub fn withdraw(&mut self, afi: Afi, prefixes: &[Prefix], out: &mut Vec<u8>) {
        let overhead = HEADER_LEN + 4 + if afi == Afi::Ipv4 { 0 } else { 7 };
        let room = self.ctx.max_len - overhead;
        let mut rest = prefixes;
        while !rest.is_empty() {
            let (count, used) = fitting(rest, room);
            let (batch, tail) = rest.split_at(count.max(1));
            rest = tail;
            let start = frame::begin(out, msg_type::UPDATE);
            if afi == Afi::Ipv4 {
                out.extend_from_slice(&(used as u16).to_be_bytes());
                for p in batch {
                    encode_nlri(p, out);
                }
                out.extend_from_slice(&[0, 0]);
            } else {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&((7 + used) as u16).to_be_bytes());
                let mut head = afi.code().to_be_bytes().to_vec();
                head.push(SAFI_UNICAST);
                put_mp_attr(out, kind::MP_UNREACH, &head, batch);
            }
            self.close(out, start);
        }
    }

    /// End-of-RIB marker for a family (RFC 4724 §2).
    pub fn end_of_rib(&mut self, afi: Afi, out: &mut Vec<u8>) {
        let start = frame::begin(out, msg_type::UPDATE);
        if afi == Afi::Ipv4 {
            out.extend_from_slice(&[0, 0, 0, 0]);
        } else {
            out.extend_from_slice(&[0, 0, 0, 7]);
            let mut head = afi.code().to_be_bytes().to_vec();
            head.push(afi.safi());
            put_mp_attr(out, kind::MP_UNREACH, &head, &[]);
        }
        self.close(out, start);
    }
}

/// How many of `prefixes`, from the front, fit in `room` bytes of NLRI, and the bytes they take.
fn fitting(prefixes: &[Prefix], room: usize) -> (usize, usize) {
    let mut used = 0;
    let mut count = 0;
    for p in prefixes {
        let l = nlri_len(p);
        if used + l > room {
            break;
        }
        used += l;
        count += 1;
    }
    (count, used)
}
