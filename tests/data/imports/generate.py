#!/usr/bin/env python3
"""Writes vectors.tsv: bcrypt and Argon2 hashes made fresh by the origin
libraries, Python's `bcrypt` and `argon2-cffi`, for keyward's tests.

    python3 -m pip install bcrypt==5.0.0 argon2-cffi==25.1.0
    python3 tests/data/imports/generate.py > tests/data/imports/vectors.tsv

Salts are random, so every run writes different hashes of the same passwords
and parameters. Each row is checked with the library's own verify, with the
right password and with a wrong one, before it is written. See README.md.
"""

import os
import sys
from importlib.metadata import version

import argon2
import bcrypt
from argon2 import low_level

BCRYPT = f"python bcrypt {version('bcrypt')}"
ARGON2 = (
    f"python argon2-cffi {version('argon2-cffi')} "
    f"(argon2-cffi-bindings {version('argon2-cffi-bindings')})"
)

QUICK_FOX = ("The quick brown fox jumps over the lazy dog; " * 3)[:100]
SEVENTY_TWO = ("0123456789abcdef" * 5)[:72]
assert len(SEVENTY_TWO.encode()) == 72

rows = []


def row(scheme, password, stored, origin):
    assert "\t" not in stored and "\n" not in stored
    rows.append((scheme, password.hex(), stored, origin))


def wrong(password):
    """A different password that is still different within bcrypt's first
    72 bytes."""
    if len(password) >= 72:
        return b"!" + password[1:]
    return password + b"!"


# bcrypt. pyca/bcrypt writes $2b$. From 5.0 it refuses passwords over 72
# bytes, which it and every other bcrypt implementation used to truncate
# silently: the rows over 72 bytes hash the first 72 bytes, which is what
# bcrypt < 5.0, PHP, Ruby, Node and Spring Security (before its
# CVE-2025-22228 fix) stored for the whole password.
BCRYPT_ROWS = [
    # (password, cost, prefixes to write it under)
    ("correct horse battery staple".encode(), 12, ["2b", "2a", "2y"]),
    (b"hunter2", 10, ["2b", "2a", "2y"]),
    ("pässwörd-日本".encode(), 5, ["2b", "2y"]),
    (b"", 4, ["2b", "2a"]),
    (b"x", 4, ["2b"]),
    (SEVENTY_TWO.encode(), 4, ["2b", "2y"]),
    ((SEVENTY_TWO + "Z").encode(), 4, ["2b"]),
    (QUICK_FOX.encode(), 5, ["2b", "2a", "2y"]),
    # 71 ASCII bytes then a 2-byte character: the 72-byte cut splits it.
    (("a" * 71 + "é").encode(), 4, ["2b"]),
    # NUL inside: every byte counts (pyca/bcrypt and the Rust crate).
    (b"ab\x00cd", 4, ["2b"]),
    (b"trailing space ", 5, ["2b"]),
    (b"p@ss:w$rd", 10, ["2a"]),
]

for password, cost, prefixes in BCRYPT_ROWS:
    used = password[:72]
    made = bcrypt.hashpw(used, bcrypt.gensalt(rounds=cost)).decode()
    assert made.startswith(f"$2b${cost:02d}$"), made
    assert bcrypt.checkpw(used, made.encode())
    assert not bcrypt.checkpw(wrong(password)[:72], made.encode())
    how = (
        f"hashpw(password[:72], gensalt(rounds={cost}))"
        if len(password) > 72
        else f"hashpw(password, gensalt(rounds={cost}))"
    )
    for prefix in prefixes:
        # $2a$ and $2y$ are the same computation as $2b$ for these
        # passwords: $2y$ is crypt_blowfish's mark for the correct
        # algorithm, and $2a$ differs from it only for passwords with
        # 8-bit bytes (crypt_blowfish's countermeasure, and OpenBSD's
        # length bug from 256 bytes), so no $2a$ row has any. pyca/bcrypt
        # verifies all three prefixes the same way.
        if prefix == "2a":
            assert all(b < 0x80 for b in password) and len(password) < 256
        stored = f"${prefix}${made[4:]}"
        assert bcrypt.checkpw(used, stored.encode())
        rewrite = "" if prefix == "2b" else f", $2b$ prefix rewritten to ${prefix}$"
        row("bcrypt", password, stored, f"{BCRYPT} {how}{rewrite}")


# Argon2: argon2-cffi's PasswordHasher (random 16-byte salt), and its
# low_level.hash_secret for other salt lengths and for version 0x10.
TYPES = {
    "argon2id": low_level.Type.ID,
    "argon2i": low_level.Type.I,
    "argon2d": low_level.Type.D,
}

ARGON2_ROWS = [
    # (scheme, password, memory_cost KiB, time_cost, parallelism, hash_len,
    #  salt_len or None for PasswordHasher, version, what)
    ("argon2id", "correct horse battery staple".encode(), 65536, 3, 4, 32, None, 19,
     "PasswordHasher() defaults, RFC 9106 second recommended option"),
    ("argon2id", "pässwörd-日本".encode(), 65536, 3, 4, 32, None, 19,
     "PasswordHasher() defaults"),
    ("argon2id", b"hunter2", 19456, 2, 1, 32, None, 19, "OWASP minimum"),
    ("argon2id", b"p@ss:w$rd", 65536, 4, 1, 32, None, 19, "PHP 7.4+ password_hash defaults"),
    ("argon2id", b"", 8, 1, 1, 32, None, 19, "smallest memory"),
    ("argon2id", QUICK_FOX.encode(), 8192, 1, 8, 32, None, 19, "eight lanes"),
    ("argon2id", b"ab\x00cd", 1024, 2, 2, 16, 8, 19, "8-byte salt, 16-byte hash"),
    ("argon2id", b"x", 1024, 2, 2, 64, 32, 19, "32-byte salt, 64-byte hash"),
    ("argon2id", b"trailing space ", 256, 2, 1, 32, 16, 16, "version 0x10"),
    ("argon2i", b"correct horse battery staple", 65536, 4, 1, 32, None, 19,
     "PHP 7.4+ PASSWORD_ARGON2I defaults"),
    ("argon2i", "pässwörd-日本".encode(), 1024, 2, 2, 32, None, 19,
     "PHP 7.2 PASSWORD_ARGON2I defaults"),
    ("argon2i", b"hunter2", 4096, 3, 1, 32, 16, 16, "version 0x10"),
    ("argon2d", b"correct horse battery staple", 4096, 2, 2, 32, None, 19, "argon2d"),
    ("argon2d", b"hunter2", 256, 2, 1, 32, 16, 16, "version 0x10"),
]

for scheme, password, m, t, p, hash_len, salt_len, v, what in ARGON2_ROWS:
    kind = TYPES[scheme]
    if salt_len is None:
        hasher = argon2.PasswordHasher(
            time_cost=t, memory_cost=m, parallelism=p, hash_len=hash_len, type=kind
        )
        stored = hasher.hash(password)
        assert hasher.verify(stored, password)
        how = "PasswordHasher"
        salt_len = 16
    else:
        stored = low_level.hash_secret(
            password, os.urandom(salt_len), t, m, p, hash_len, kind, version=v
        ).decode()
        how = "low_level.hash_secret"
    assert low_level.verify_secret(stored.encode(), password, kind)
    try:
        low_level.verify_secret(stored.encode(), wrong(password), kind)
        raise AssertionError("a wrong password verified")
    except argon2.exceptions.VerifyMismatchError:
        pass
    assert stored.startswith(f"${scheme}$v={v}$m={m},t={t},p={p}$"), stored
    origin = (
        f"{ARGON2} {how}(type={scheme}, memory_cost={m}, time_cost={t}, "
        f"parallelism={p}, hash_len={hash_len}, salt_len={salt_len}, version={v}): {what}"
    )
    row(scheme, password, stored, origin)


out = sys.stdout
out.write("scheme\tpassword_hex\thash\torigin\n")
for r in rows:
    out.write("\t".join(r) + "\n")
