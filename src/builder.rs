//! The states of a [`KeywardBuilder`]: whether it has a key ring and a
//! store. [`keys`](KeywardBuilder::keys) and
//! [`store`](KeywardBuilder::store) move a builder from one state to the
//! next; with both, [`build`](KeywardBuilder::build) makes a
//! [`Keyward`](crate::Keyward)`<`[`Complete`](crate::Complete)`>`.
//!
//! ```
//! use keyward::builder::{KeywardBuilder, WithKeys, WithStore};
//! use keyward::{JwtAlg, KeyRing, Keyward, MemoryStore};
//! # fn main() -> Result<(), keyward::Error> {
//! let builder: KeywardBuilder<WithKeys, WithStore> = Keyward::builder()
//!     .keys(KeyRing::generate(JwtAlg::EdDSA)?)
//!     .store(MemoryStore::new());
//! let err = builder.build().unwrap_err();
//! assert!(err.to_string().contains(".issuer()"));
//! # Ok(())
//! # }
//! ```

pub use crate::KeywardBuilder;

/// A builder not given a key ring yet.
#[derive(Debug)]
pub struct NoKeys(());

/// A builder given a key ring with [`keys`](KeywardBuilder::keys).
#[derive(Debug)]
pub struct WithKeys(());

/// A builder not given a store yet.
#[derive(Debug)]
pub struct NoStore(());

/// A builder given a store with [`store`](KeywardBuilder::store) or
/// [`shared_store`](KeywardBuilder::shared_store).
#[derive(Debug)]
pub struct WithStore(());
