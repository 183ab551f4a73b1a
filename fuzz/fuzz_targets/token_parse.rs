//! Opaque tokens: `Tokens::parse` on arbitrary strings, plain and keyed;
//! and `generate_with_rng` fed the fuzzer's bytes, whose every token must
//! parse back to the same id and digest.
#![no_main]

use std::sync::LazyLock;

use keyward::Tokens;
use keyward_fuzz::ByteRng;
use libfuzzer_sys::fuzz_target;

static TOKENS: LazyLock<[Tokens; 2]> =
    LazyLock::new(|| [Tokens::plain(), Tokens::keyed(&keyward_fuzz::keyring())]);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let Ok(token) = std::str::from_utf8(rest) else {
            return;
        };
        for tokens in TOKENS.iter() {
            if let Ok(parsed) = tokens.parse(token) {
                assert!(token.starts_with(parsed.prefix()));
                assert!(token.contains(parsed.id()));
            }
        }
    } else {
        // [prefix length][prefix][random bytes]
        let Some((&len, rest)) = rest.split_first() else {
            return;
        };
        let Some((prefix, random)) = rest.split_at_checked(usize::from(len % 32)) else {
            return;
        };
        let Ok(prefix) = std::str::from_utf8(prefix) else {
            return;
        };
        for tokens in TOKENS.iter() {
            let Ok(new) = tokens.generate_with_rng(prefix, &mut ByteRng(random)) else {
                continue;
            };
            let token = new.token().unprotected_as_str();
            let parsed = tokens.parse(token).expect("a minted token parses");
            assert_eq!(parsed.prefix(), prefix);
            assert_eq!(parsed.id(), new.id());
            assert_eq!(parsed.digest(), new.digest());
        }
    }
});
