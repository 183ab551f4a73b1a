//! Helpers shared by the integration tests: hex, a small deterministic
//! generator and mutator for the robustness tests, the PostgreSQL and Redis
//! servers of the store tests, sessions over any store (`sessions`), and
//! runs of the `keyward` binary (`cli`, with the `cli` feature, which
//! builds it).
//!
//! The store doubles and the Wycheproof loader are in `keyward::testing`
//! (feature `test-util`).
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod events;
#[cfg(feature = "redis")]
pub mod raw;
pub mod services;
pub mod sessions;

#[allow(unused_imports, reason = "not every test uses the servers")]
pub use services::*;

pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// SplitMix64: a small deterministic generator for fixed-seed robustness
/// tests. Not for anything secret.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Applies one to three random mutations to `seed`: replace, insert or
/// remove a character, truncate, make it over-long, replace a run of digits
/// with an extreme value, flip a letter's case, or swap two neighbours.
/// Shared by the fixed-seed robustness tests of every parser.
#[allow(clippy::arithmetic_side_effects)]
pub fn mutate(rng: &mut SplitMix, seed: &str, alphabet: &[char], extremes: &[&str]) -> String {
    let mut s: Vec<char> = seed.chars().collect();
    for _ in 0..=rng.below(3) {
        let len = s.len().max(1);
        match rng.below(8) {
            0 => {
                let i = rng.below(len);
                if i < s.len() {
                    s[i] = *rng.pick(alphabet);
                }
            }
            1 => s.insert(rng.below(s.len() + 1), *rng.pick(alphabet)),
            2 => {
                let i = rng.below(len);
                if i < s.len() {
                    s.remove(i);
                }
            }
            3 => s.truncate(rng.below(len)),
            4 => {
                // Over-long: repeat a prefix, or pad with many characters.
                if rng.below(2) == 0 {
                    let extra: Vec<char> = s[..rng.below(len).min(s.len())].to_vec();
                    s.extend(extra);
                } else {
                    let c = *rng.pick(&['A', 'a', '0', '.', '=']);
                    let at = rng.below(s.len() + 1);
                    for _ in 0..rng.below(300) {
                        s.insert(at, c);
                    }
                }
            }
            5 => {
                // Replace a run of digits with an extreme value.
                let text: String = s.iter().collect();
                let runs = digit_runs(&text);
                if !runs.is_empty() && !extremes.is_empty() {
                    let (start, end) = *rng.pick(&runs);
                    let replaced =
                        format!("{}{}{}", &text[..start], rng.pick(extremes), &text[end..]);
                    s = replaced.chars().collect();
                }
            }
            6 => {
                // Change the case of one character (breaks hex and base64).
                let i = rng.below(len);
                if i < s.len() {
                    let c = s[i];
                    s[i] = if c.is_ascii_lowercase() {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    };
                }
            }
            _ => {
                let i = rng.below(len);
                if i + 1 < s.len() {
                    s.swap(i, i + 1);
                }
            }
        }
    }
    s.into_iter().collect()
}

/// The byte ranges of the runs of ASCII digits in `text`.
#[allow(clippy::arithmetic_side_effects)]
pub fn digit_runs(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}
