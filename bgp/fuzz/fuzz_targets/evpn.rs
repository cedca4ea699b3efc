//! Fuzz the EVPN decoders on their own (the NLRI run, extended communities, the PMSI tunnel
//! attribute): never panic, and whatever decodes re-encodes to something that decodes to the
//! same values (the `decode` target reaches them inside whole UPDATEs too).
#![no_main]

use fabric_bgp::packet::evpn::decode_routes;
use fabric_bgp::packet::ext_community;
use fabric_bgp::packet::pmsi::PmsiTunnel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(routes) = decode_routes(data, "fuzz") {
        let mut out = Vec::new();
        for r in &routes {
            r.encode(&mut out);
        }
        assert_eq!(decode_routes(&out, "fuzz").as_ref(), Ok(&routes));
    }
    if let Ok(list) = ext_community::decode(data) {
        assert_eq!(ext_community::encode(&list), data);
    }
    if let Ok(pmsi) = PmsiTunnel::decode(data) {
        assert_eq!(PmsiTunnel::decode(&pmsi.encode()), Ok(pmsi));
    }
});
