//! The keyward quick start: register, log in, and upgrade an old hash on
//! login. Run it with `cargo run --example quickstart`.
//!
//! Every step uses the real default policy (PBKDF2-HMAC-SHA256, 600,000
//! iterations), except the one hash labelled "an old deployment's", which
//! is made at 1,000 iterations to show the upgrade on login.

use std::collections::HashMap;

use keyward::{Error, Keyward, Password, PasswordPolicy};

fn main() -> Result<(), Error> {
    let kw = Keyward::builder().build()?;
    println!(
        "policy: PBKDF2-HMAC-SHA256, {} iterations",
        kw.passwords().policy().iterations
    );

    // A user table: username -> stored PHC string.
    let mut users: HashMap<&str, String> = HashMap::new();

    // 1. Register: hash the new password, store the PHC string.
    let stored = kw
        .passwords()
        .hash(&Password::from("correct horse battery staple"))?;
    println!("1. registered alice: {}…", &stored[..40]);
    users.insert("alice", stored);

    // 2. Log in: verify returns a proof, or an error for a wrong password.
    let verified = kw.passwords().verify(
        &Password::from("correct horse battery staple"),
        &users["alice"],
    )?;
    println!(
        "2. alice logged in (scheme {}, rehash due: {})",
        verified.scheme(),
        verified.rehash().is_some()
    );
    let wrong = kw
        .passwords()
        .verify(&Password::from("Tr0ub4dor&3"), &users["alice"]);
    println!(
        "   wrong password: {}",
        wrong.err().map(|e| e.to_string()).unwrap_or_default()
    );

    // 3. An unknown user costs the same as a wrong password, and fails the same way.
    let unknown = kw
        .passwords()
        .verify_unknown_user(&Password::from("Tr0ub4dor&3"));
    println!(
        "3. unknown user: {}",
        unknown.err().map(|e| e.to_string()).unwrap_or_default()
    );

    // 4. Rehash on login: bob's hash comes from an old deployment at 1,000 iterations.
    let mut old_policy = PasswordPolicy::default();
    old_policy.iterations = 1_000; // an old deployment's cost, for this demo only
    let old = Keyward::builder().password_policy(old_policy).build()?;
    users.insert(
        "bob",
        old.passwords().hash(&Password::from("hunter2hunter2"))?,
    );
    println!("4. bob's stored hash: {}…", &users["bob"][..36]);
    let verified = kw
        .passwords()
        .verify(&Password::from("hunter2hunter2"), &users["bob"])?;
    if let Some(new) = verified.rehash() {
        // In SQL: UPDATE users SET hash = $new WHERE name = 'bob' AND hash = $old
        let entry = users
            .get_mut("bob")
            .filter(|h| h.as_str() == verified.old_hash());
        if let Some(h) = entry {
            *h = new.to_owned();
        }
        println!("   upgraded on login to: {}…", &users["bob"][..40]);
    }
    let info = kw.passwords().inspect(&users["bob"])?;
    println!(
        "   now {} iterations, rehash due: {}",
        info.iterations, info.needs_rehash
    );
    Ok(())
}
