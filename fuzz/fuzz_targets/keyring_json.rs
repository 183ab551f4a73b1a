//! `KeyRing::from_json` on arbitrary text: the key ring file. A key ring
//! that parses must survive `to_json` and parse again, unchanged.
#![no_main]

use keyward::KeyRing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ring) = KeyRing::from_json(json) {
        let out = ring.to_json();
        let again = KeyRing::from_json(&out).expect("to_json output parses");
        assert_eq!(*again.to_json(), *out, "to_json is not stable");
    }
});
