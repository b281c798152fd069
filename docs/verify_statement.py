#!/usr/bin/env python3
"""Check a Zhiku statement on your own: python3 verify_statement.py statement.json [EXPECTED_HEAD_HASH]

A statement (downloaded from the storefront's admin or your promoter page) lists every ledger entry from your
first one to the chain head. This script needs nothing but Python 3: it recomputes each entry's hash, checks that
each entry links to the one before it, that the entries carrying postings contain what the statement says you were
credited, and that the last hash is the chain head, which you can compare with a head published elsewhere (pass it
as the second argument). Exit status 0 means the statement verifies.
"""

import hashlib
import json
import sys


def sha256_json(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                          .encode()).hexdigest()


def verify(statement: dict, expected_head: str | None = None) -> list[str]:
    problems = []
    entries = statement["entries"]
    previous = entries[0]["previous_hash"] if entries else statement["head"]["hash"]
    totals: dict[tuple[str, str], int] = {}
    for entry in entries:
        if entry["previous_hash"] != previous:
            problems.append(f"entry {entry['sequence']} does not link to the entry before it")
        if "postings" in entry:
            if sha256_json(sorted(entry["postings"])) != entry["postings_digest"]:
                problems.append(f"entry {entry['sequence']}: postings do not match their digest")
            if sum(amount for _code, _currency, amount in entry["postings"]) != 0:
                problems.append(f"entry {entry['sequence']} does not balance")
            for code, currency, amount in entry["postings"]:
                if code in statement["accounts"]:
                    totals[(code, currency)] = totals.get((code, currency), 0) + amount
        document = {key: entry[key] for key in ("tenant", "sequence", "kind", "memo", "order", "created_at",
                                                 "previous_hash", "postings_digest")}
        if sha256_json(document) != entry["hash"]:
            problems.append(f"entry {entry['sequence']}: content does not match its hash")
        previous = entry["hash"]
    if previous != statement["head"]["hash"]:
        problems.append("the last entry is not the chain head")
    if expected_head and expected_head != statement["head"]["hash"]:
        problems.append("the chain head differs from the one you expected")
    for (code, currency), amount in sorted(totals.items()):
        print(f"{code} {currency}: balance {-amount} (credit positive)")
    return problems


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        found = verify(json.load(handle), sys.argv[2] if len(sys.argv) > 2 else None)
    for problem in found:
        print("PROBLEM:", problem)
    print("statement verifies" if not found else "statement does NOT verify")
    sys.exit(1 if found else 0)
