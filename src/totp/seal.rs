//! Sealed TOTP secrets: AES-256-GCM (aws-lc-rs) under a key the ring
//! derives, with a random 96-bit nonce per seal and the subject and the
//! factor id as associated data. A store reader learns nothing of the
//! secret; a record moved to another subject, or given another factor's
//! id, fails to open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};

use crate::error::{Error, StoreError};
use crate::hex::{Case, decode_array, encode as hex};
use crate::keyring::KeyRing;

/// The label of the sealing key (see [`KeyRing::derive`]).
const SEAL_KEY_LABEL: &str = "totp seal";
/// What the associated data begins with; the NUL ends the fixed part.
const AAD_DOMAIN: &[u8] = b"keyward totp secret v1\0";
/// What the key id MACs.
const KEY_ID_DOMAIN: &[u8] = b"keyward totp seal key id v1\0";

/// A secret as stored: the key's id, the nonce and the ciphertext with
/// its tag, in hex.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Sealed {
    /// Which key sealed it: 8 bytes of a MAC under that key.
    pub(crate) kid: String,
    pub(crate) nonce: String,
    pub(crate) ciphertext: String,
}

/// The sealing key.
pub(crate) struct Sealer {
    key: RandomizedNonceKey,
    kid: String,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn aad(subject: &str, factor: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(128);
    aad.extend_from_slice(AAD_DOMAIN);
    // Lengths first, so that no (subject, factor) pair reads as another.
    aad.extend_from_slice(
        &u16::try_from(subject.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    aad.extend_from_slice(subject.as_bytes());
    aad.extend_from_slice(factor.as_bytes());
    aad
}

impl Sealer {
    pub(crate) fn new(keys: &KeyRing) -> Result<Self, Error> {
        let key = keys.derive(SEAL_KEY_LABEL);
        let bytes = key.unprotected_as_bytes();
        let id = crate::mac::hmac_sha256(bytes, &[KEY_ID_DOMAIN]);
        let kid = hex(id.get(..8).unwrap_or_default());
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map_err(|_| Error::Config("the TOTP sealing key is unusable".into()))?;
        Ok(Self { key, kid })
    }

    /// Seals `secret` for `subject`'s factor `factor`.
    pub(crate) fn seal(&self, secret: &[u8], subject: &str, factor: &str) -> Result<Sealed, Error> {
        let mut in_out = secret.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(aad(subject, factor)), &mut in_out)
            .map_err(|_| Error::Rng)?;
        let sealed = Sealed {
            kid: self.kid.clone(),
            nonce: hex(nonce.as_ref()),
            ciphertext: hex(&in_out),
        };
        zeroize::Zeroize::zeroize(&mut in_out);
        Ok(sealed)
    }

    /// Opens a sealed secret of `subject`'s factor `factor`.
    ///
    /// # Errors
    /// [`Error::Store`] when it was sealed under another key, for another
    /// subject or factor, or was altered.
    pub(crate) fn open(
        &self,
        sealed: &Sealed,
        subject: &str,
        factor: &str,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
        if sealed.kid != self.kid {
            return Err(StoreError::Corrupt("a TOTP secret sealed under another key").into());
        }
        let nonce = decode_array::<NONCE_LEN>(&sealed.nonce, Case::Lower)
            .ok_or(StoreError::Corrupt("a TOTP secret's nonce"))?;
        let mut in_out = zeroize::Zeroizing::new(
            crate::hex::decode_vec(&sealed.ciphertext)
                .ok_or(StoreError::Corrupt("a TOTP secret's ciphertext"))?,
        );
        let len = self
            .key
            .open_in_place(
                Nonce::from(&nonce),
                Aad::from(aad(subject, factor)),
                in_out.as_mut_slice(),
            )
            .map_err(|_| StoreError::Corrupt("a TOTP secret does not open for this subject"))?
            .len();
        in_out.truncate(len);
        Ok(in_out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(&KeyRing::generate(crate::JwtAlg::HS256).unwrap()).unwrap()
    }

    #[test]
    fn a_secret_opens_for_its_subject_and_factor_only() {
        let s = sealer();
        let secret = b"12345678901234567890";
        let sealed = s.seal(secret, "alice", "f1").unwrap();
        assert!(!sealed.ciphertext.contains(&hex(secret)));
        assert_eq!(s.open(&sealed, "alice", "f1").unwrap().as_slice(), secret);
        assert!(s.open(&sealed, "bob", "f1").is_err(), "another subject");
        assert!(s.open(&sealed, "alice", "f2").is_err(), "another factor");
        assert!(
            s.open(&sealed, "alic", "ef1").is_err(),
            "a shifted boundary"
        );
        assert!(
            sealer().open(&sealed, "alice", "f1").is_err(),
            "another key"
        );
    }

    #[test]
    fn each_seal_has_its_own_nonce_and_an_altered_one_fails() {
        let s = sealer();
        let a = s.seal(b"same", "alice", "f1").unwrap();
        let b = s.seal(b"same", "alice", "f1").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        let mut altered = a.clone();
        let last = altered.ciphertext.pop().unwrap();
        altered.ciphertext.push(if last == '0' { '1' } else { '0' });
        assert!(s.open(&altered, "alice", "f1").is_err());
        let mut renonced = a;
        renonced.nonce = b.nonce;
        assert!(s.open(&renonced, "alice", "f1").is_err());
    }
}
