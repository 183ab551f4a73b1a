#!/usr/bin/env python3
"""Writes the facts of the Wycheproof vectors that keyward's tests use into
this folder: test ids, inputs, expected outputs, the valid/invalid result and
the flags, with the group parameters that matter. Comments, notes and the
header are prose and are left out.

Source: Project Wycheproof (repository C2SP/wycheproof, folder
testvectors_v1/, commit dac1dd4), Apache-2.0 (LICENSE beside this file).

Usage: python3 tests/data/wycheproof/extract.py DIR
where DIR holds the verbatim Wycheproof files. Run from the repository root.
"""

import json
import os
import sys

FILES = [
    "pbkdf2_hmacsha1_test.json",
    "pbkdf2_hmacsha256_test.json",
    "pbkdf2_hmacsha512_test.json",
    "hmac_sha256_test.json",
    "json_web_signature_test.json",
]
PROVENANCE = {
    "repository": "C2SP/wycheproof",
    "folder": "testvectors_v1",
    "commit": "dac1dd4",
    "license": "Apache-2.0",
}
GROUP_FACTS = ("type", "keySize", "tagSize", "private", "public")
CASE_FACTS = (
    "tcId",
    "flags",
    "password",
    "salt",
    "iterationCount",
    "dkLen",
    "dk",
    "key",
    "msg",
    "tag",
    "jws",
    "result",
)


def facts(doc, name):
    groups = []
    count = 0
    for group in doc["testGroups"]:
        tests = [{k: case[k] for k in CASE_FACTS if k in case} for case in group["tests"]]
        count += len(tests)
        kept = {k: group[k] for k in GROUP_FACTS if k in group}
        kept["tests"] = tests
        groups.append(kept)
    if count != doc["numberOfTests"]:
        sys.exit(f"{name}: {count} tests, numberOfTests says {doc['numberOfTests']}")
    out = {"source": dict(PROVENANCE, file=name)}
    if "algorithm" in doc:
        out["algorithm"] = doc["algorithm"]
    out["numberOfTests"] = doc["numberOfTests"]
    out["testGroups"] = groups
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    here = os.path.dirname(os.path.abspath(__file__))
    for name in FILES:
        with open(os.path.join(sys.argv[1], name), encoding="utf-8") as f:
            doc = json.load(f)
        out = facts(doc, name)
        with open(os.path.join(here, name), "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1, sort_keys=False)
            f.write("\n")
        print(f"{name}: {out['numberOfTests']} tests")


if __name__ == "__main__":
    main()
