//! The fuzz seed corpora, decoded on every test run: `bgp/fuzz/corpus/decode` (whole messages,
//! including the truncated-AS_PATH UPDATE that makes zettabgp 0.6 loop forever, and EVPN
//! UPDATEs) returns promptly with a value or a NOTIFICATION-ready error; `corpus/evpn` (EVPN
//! NLRI, extended communities, PMSI tunnel values) re-encodes to what decodes the same, for
//! every truncation too (what the `evpn` fuzz target checks).

use std::time::{Duration, Instant};

use fabric_bgp::packet::evpn::decode_routes;
use fabric_bgp::packet::frame::MAX_LEN;
use fabric_bgp::packet::pmsi::PmsiTunnel;
use fabric_bgp::packet::{decode_message, ext_community, Afi, DecodeCtx, Message};

fn corpus() -> Vec<(String, Vec<u8>)> {
    corpus_of("decode")
}

fn corpus_of(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).expect("corpus file"),
            )
        })
        .collect()
}

#[test]
fn every_seed_decodes_quickly() {
    let seeds = corpus();
    assert!(seeds.len() >= 9, "seed corpus is missing files");
    for (name, bytes) in &seeds {
        let start = Instant::now();
        let result = decode_message(bytes, MAX_LEN, DecodeCtx::default());
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{name} took {:?}",
            start.elapsed()
        );
        if name.starts_with("update_truncated") {
            let Ok(Message::Update(u)) = &result else {
                panic!("{name}: expected an UPDATE treated as withdraw, got {result:?}")
            };
            assert!(
                u.treat_as_withdraw
                    .as_deref()
                    .is_some_and(|r| r.contains("AS_PATH")),
                "{u:?}"
            );
            assert!(u.nlri.is_empty());
        } else {
            assert!(result.is_ok(), "{name}: {result:?}");
        }
        if name.starts_with("update_evpn") {
            let Ok(Message::Update(u)) = &result else {
                panic!("{name}: not an UPDATE")
            };
            assert!(u.treat_as_withdraw.is_none(), "{name}: {u:?}");
            let routes = u.evpn_reach.as_ref().map_or(0, |r| r.routes.len())
                + u.evpn_unreach.as_ref().map_or(0, |r| r.routes.len());
            assert!(
                routes > 0 || u.end_of_rib() == Some(Afi::L2vpnEvpn),
                "{name}: no EVPN routes"
            );
        }
    }
}

#[test]
fn every_truncation_of_every_seed_is_handled() {
    for (name, bytes) in corpus() {
        for cut in 0..bytes.len() {
            let mut msg = bytes[..cut].to_vec();
            if msg.len() >= 18 {
                // Keep the header consistent so the body decoders see the truncation.
                msg[16..18].copy_from_slice(&(cut as u16).to_be_bytes());
            }
            let _ = decode_message(&msg, MAX_LEN, DecodeCtx::default());
            let _ = decode_message(
                &msg,
                MAX_LEN,
                DecodeCtx {
                    four_octet_as: false,
                    ibgp: true,
                },
            );
            let _ = name;
        }
    }
}

/// What the `evpn` fuzz target asserts, for one input.
fn evpn_round_trip(data: &[u8]) {
    if let Ok(routes) = decode_routes(data, "seed") {
        let mut out = Vec::new();
        for r in &routes {
            r.encode(&mut out);
        }
        assert_eq!(decode_routes(&out, "seed").as_ref(), Ok(&routes));
    }
    if let Ok(list) = ext_community::decode(data) {
        assert_eq!(ext_community::encode(&list), data);
    }
    if let Ok(pmsi) = PmsiTunnel::decode(data) {
        assert_eq!(PmsiTunnel::decode(&pmsi.encode()), Ok(pmsi));
    }
}

#[test]
fn evpn_seeds_and_their_truncations_round_trip() {
    let seeds = corpus_of("evpn");
    assert!(seeds.len() >= 3, "evpn seed corpus is missing files");
    for (name, bytes) in &seeds {
        let whole = decode_routes(bytes, "seed").is_ok()
            || ext_community::decode(bytes).is_ok()
            || PmsiTunnel::decode(bytes).is_ok();
        assert!(whole, "{name} decodes as nothing");
        for cut in 0..=bytes.len() {
            evpn_round_trip(&bytes[..cut]);
        }
    }
}
