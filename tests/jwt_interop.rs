//! Interop with an independent implementation: PyJWT (with `cryptography`).
//!
//! keyward-issued tokens verify in PyJWT against the published JWKS (or the
//! HS256 secret), and PyJWT-made tokens with matching claims and keys verify
//! in keyward. PyJWT is installed into a virtualenv in the temp folder. The
//! test is skipped, with a printed line, only when `python3` is absent.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use keyward::{JwtAlg, KeyRing, Keyward};
use serde_json::{Value, json};

/// The peer, written for this test: one JSON request on stdin, one JSON
/// answer on stdout.
const PEER: &str = r#"
import json, sys, base64, time
import jwt
from cryptography.hazmat.primitives import serialization

req = json.load(sys.stdin)
alg = req["alg"]
if req["op"] == "verify":
    if alg == "HS256":
        key = base64.b64decode(req["secret"])
    else:
        key = jwt.PyJWK(req["jwk"]).key
    claims = jwt.decode(req["token"], key, algorithms=[alg], audience=req["aud"], issuer=req["iss"],
                        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]})
    header = jwt.get_unverified_header(req["token"])
    print(json.dumps({"claims": claims, "header": header}))
else:
    raw = base64.b64decode(req["key"])
    key = raw if alg == "HS256" else serialization.load_der_private_key(raw, password=None)
    now = int(time.time())
    claims = {"iss": req["iss"], "aud": req["aud"], "sub": "py-user", "iat": now, "exp": now + 600,
              "jti": "py-jti-1", "sid": "py-session"}
    token = jwt.encode(claims, key, algorithm=alg, headers={"kid": req["kid"], "typ": "at+jwt"})
    print(json.dumps({"token": token}))
"#;

fn python() -> Option<PathBuf> {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then(|| PathBuf::from("python3"))
}

/// A virtualenv with PyJWT, made once per machine and reused.
fn venv(python: &Path) -> PathBuf {
    let dir = std::env::temp_dir().join("keyward-pyjwt-venv");
    let py = dir.join("bin/python");
    let ready = Command::new(&py)
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        let status = Command::new(python)
            .args(["-m", "venv"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "python3 -m venv failed");
        let out = Command::new(dir.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "pyjwt>=2.8",
                "cryptography>=42",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pip install pyjwt failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    py
}

fn peer(py: &Path, request: &Value) -> Value {
    let mut child = Command::new(py)
        .args(["-c", PEER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "PyJWT: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn pyjwt_interop_both_ways() {
    let Some(python) = python() else {
        println!("SKIPPED: python3 not found; PyJWT interop not run");
        return;
    };
    let py = venv(&python);
    let mut checked = 0;
    for alg in [JwtAlg::EdDSA, JwtAlg::ES256, JwtAlg::HS256] {
        let ring = KeyRing::generate(alg).unwrap();
        let file: Value = serde_json::from_str(&ring.to_json()).unwrap();
        let key_b64 = file["jwt_keys"][0]["key"].as_str().unwrap().to_owned();
        let kid = ring.current_jwt_key().kid().to_owned();
        let kw = Keyward::builder()
            .issuer("https://auth.example.com")
            .audience("api")
            .keys(ring)
            .build()
            .unwrap();
        let jwt = kw.jwt().unwrap();
        let jwks: Value = serde_json::from_str(jwt.jwks()).unwrap();

        // keyward → PyJWT.
        let token = jwt.issue("user-42", "session-7").unwrap();
        let mut request = json!({
            "op": "verify", "alg": alg.name(), "token": token.unprotected_as_str(),
            "aud": "api", "iss": "https://auth.example.com",
        });
        if alg == JwtAlg::HS256 {
            request["secret"] = json!(key_b64);
        } else {
            request["jwk"] = jwks["keys"][0].clone();
        }
        let answer = peer(&py, &request);
        assert_eq!(answer["claims"]["sub"], "user-42", "{alg}");
        assert_eq!(answer["claims"]["sid"], "session-7");
        assert_eq!(answer["header"]["typ"], "at+jwt");
        assert_eq!(answer["header"]["kid"], kid);

        // PyJWT → keyward.
        let answer = peer(
            &py,
            &json!({"op": "sign", "alg": alg.name(), "key": key_b64, "kid": kid, "aud": "api", "iss": "https://auth.example.com"}),
        );
        let claims = jwt.verify(answer["token"].as_str().unwrap()).unwrap();
        assert_eq!(
            (
                claims.sub.as_str(),
                claims.sid.as_str(),
                claims.jti.as_str()
            ),
            ("py-user", "py-session", "py-jti-1")
        );

        // And a PyJWT token for another audience is refused.
        let other = peer(
            &py,
            &json!({"op": "sign", "alg": alg.name(), "key": key_b64, "kid": kid, "aud": "other", "iss": "https://auth.example.com"}),
        );
        assert!(jwt.verify(other["token"].as_str().unwrap()).is_err());
        checked += 1;
    }
    assert_eq!(checked, 3);
    println!("PyJWT interop: EdDSA, ES256 and HS256 verified both ways");
}
