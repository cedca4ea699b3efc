//! The fuzz seed corpus (bgp/fuzz/corpus/decode), including the truncated-AS_PATH UPDATE that
//! makes zettabgp 0.6 loop forever, decoded on every test run: each input returns promptly
//! with a value or a NOTIFICATION-ready error.

use std::time::{Duration, Instant};

use fabric_bgp::packet::frame::MAX_LEN;
use fabric_bgp::packet::{decode_message, DecodeCtx, Message};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
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
            let Ok(Message::Update(u)) = result else {
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
