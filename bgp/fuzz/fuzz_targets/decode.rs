//! Fuzz message decoding: the framing check and every decoder behind it, under each
//! negotiated variant (2/4-octet AS, iBGP/eBGP, extended messages). Must never panic, loop or
//! allocate without bound.
#![no_main]

use fabric_bgp::packet::frame::{split_message, EXTENDED_MAX_LEN, MAX_LEN};
use fabric_bgp::packet::{decode_body, decode_message, DecodeCtx};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for four_octet_as in [true, false] {
        for ibgp in [true, false] {
            let ctx = DecodeCtx {
                four_octet_as,
                ibgp,
            };
            for max in [MAX_LEN, EXTENDED_MAX_LEN] {
                let _ = decode_message(data, max, ctx);
                // A stream of messages, as the reader task sees it.
                let mut rest = data;
                while let Ok(Some((header, body))) = split_message(rest, max) {
                    let _ = decode_body(header.kind, body, ctx);
                    rest = &rest[header.len..];
                }
            }
            // Bodies without a header, straight into the UPDATE decoder.
            let _ = fabric_bgp::packet::update::decode_update(data, ctx);
        }
    }
});
