//! The operating system's CSPRNG, the one source of every secret and id
//! keyward makes: salts, keys, session and family ids, token secrets.

use crate::error::Error;

/// Fills `buf` from the OS CSPRNG (getrandom, through `rand`'s `SysRng`).
///
/// # Errors
/// [`Error::Rng`] when the OS generator fails; nothing is made from a
/// partial fill.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), Error> {
    use rand::TryRng;
    rand::rngs::SysRng
        .try_fill_bytes(buf)
        .map_err(|_| Error::Rng)
}
