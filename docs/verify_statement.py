#!/usr/bin/env python3
"""Check a Zhiku statement on your own:

    python3 verify_statement.py statement.json [EXPECTED_HEAD_HASH] [--heads heads.json]

A statement (downloaded from the storefront's admin or your promoter page) lists every ledger entry from your
first one (the newest one, while you have none) to the chain head: the entries that touch your accounts with all
their postings, the publications of your items with their record (the version, the hash of its content, its
creators and their shares, when), the others with only their digests. This script needs nothing but Python 3.7 or
later. It recomputes each entry's hash, checks that each entry links to the one before it and has the next sequence
number, that the last entry is the chain head (its hash and its sequence), checks that the postings shown match
their entry's digest and balance in each currency and that each publication's record matches its digest, prints
the publications shown, and prints the balance of your accounts over the entries that show postings.

What that proves: the entries form one unbroken chain that ends at the statement's head, and every entry shown is
in it exactly as shown. What it does not prove: that the statement shows every entry touching your accounts. An
entry shown only by its digest may still have credited or debited you (a digest hides which accounts it names), and
a statement may start after your first entry or end before the storefront's current head. So compare the head with
a head published elsewhere (the second argument, or ``--heads``), and compare the entries shown with your own
records of your sales and payouts.

With ``--heads`` it also checks the storefront's published chain heads (saved from
``https://<storefront>/ledger/heads.json``): they must be the same storefront's, each head inside the statement's
range must be the hash of the entry at that sequence, a head published beyond the statement's last entry means
the statement is out of date or cut short, and, when the ``cryptography`` package is installed, each head's Ed25519
signature must verify. Exit status 0 means the statement verifies.
"""

from __future__ import annotations  # the annotations below are for reading: Python 3.7 and later run this script

import hashlib
import json
import sys

GENESIS_HASH = "0" * 64  # the previous hash of a storefront's first entry


def sha256_json(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                          .encode()).hexdigest()


def verify(statement: dict, expected_head: str | None = None) -> list[str]:
    problems = []
    entries = statement["entries"]
    previous = entries[0]["previous_hash"] if entries else GENESIS_HASH
    following = None  # the sequence the next entry must have: one chain has no gaps
    totals: dict[tuple[str, str], int] = {}
    for entry in entries:
        if entry["tenant"] != statement["tenant"]:
            problems.append(f"entry {entry['sequence']} is not in storefront {statement['tenant']!r}'s chain")
        if following is not None and entry["sequence"] != following:
            problems.append(f"entry {entry['sequence']} follows entry {following - 1}: entries are missing or out "
                            "of order")
        if entry["previous_hash"] != previous:
            problems.append(f"entry {entry['sequence']} does not link to the entry before it")
        if "postings" in entry:
            if sha256_json(sorted(entry["postings"])) != entry["postings_digest"]:
                problems.append(f"entry {entry['sequence']}: postings do not match their digest")
            # Per currency, as the ledger itself checks: yuan credited cannot be paid for with dollars debited.
            sums: dict[str, int] = {}
            for _code, currency, amount in entry["postings"]:
                sums[currency] = sums.get(currency, 0) + amount
            unbalanced = sorted(currency for currency, total in sums.items() if total)
            if unbalanced:
                problems.append(f"entry {entry['sequence']} does not balance in {', '.join(unbalanced)}")
            for code, currency, amount in entry["postings"]:
                if code in statement["accounts"]:
                    totals[(code, currency)] = totals.get((code, currency), 0) + amount
        if "record" in entry:  # a publication of one of your items: which version, its content hash, its creators
            if sha256_json(entry["record"]) != entry.get("record_digest"):
                problems.append(f"entry {entry['sequence']}: the publication record does not match its digest")
            record = entry["record"]
            print(f"published: item {record['item']} version {record['version']} at {record['published_at']}, "
                  f"content {record['content_hash']}, creators {record['creators']}")
        document = {key: entry[key] for key in ("tenant", "sequence", "kind", "memo", "order", "created_at",
                                                 "previous_hash", "postings_digest")}
        if entry.get("record_digest"):  # publications: their record is hashed through its digest
            document["record_digest"] = entry["record_digest"]
        if sha256_json(document) != entry["hash"]:
            problems.append(f"entry {entry['sequence']}: content does not match its hash")
        previous, following = entry["hash"], entry["sequence"] + 1
    # The head is the last entry, its sequence too: check_heads measures the statement's reach by it, so a head
    # claiming a later sequence would hide the published heads a cut-short statement no longer reaches.
    last = last_sequence(statement)
    if entries and previous != statement["head"]["hash"]:
        problems.append("the last entry is not the chain head")
    elif entries and statement["head"]["sequence"] != last:
        problems.append(f"the chain head claims entry {statement['head']['sequence']}, but the statement ends at "
                        f"entry {last}")
    elif not entries and (statement["head"]["sequence"], statement["head"]["hash"]) != (0, GENESIS_HASH):
        problems.append("the statement has no entries, so its head must be the empty chain's (sequence 0)")
    if expected_head and expected_head != statement["head"]["hash"]:
        problems.append("the chain head differs from the one you expected")
    for (code, currency), amount in sorted(totals.items()):
        print(f"{code} {currency}: balance {-amount} (credit positive)")
    return problems


def last_sequence(statement: dict) -> int:
    """The sequence of the statement's last entry (0 for none): how far the statement verifiably reaches."""
    return statement["entries"][-1]["sequence"] if statement["entries"] else 0


def check_heads(statement: dict, published: dict) -> list[str]:
    """Published heads of the statement's storefront that fall inside the statement must be the hashes of the entries
    at their sequences, and none may lie beyond the statement's last entry (not its head: that is only a claim until
    ``verify`` has tied it to the last entry)."""
    if published["tenant"] != statement["tenant"]:
        return [f"the published heads are storefront {published['tenant']!r}'s, the statement is "
                f"{statement['tenant']!r}'s"]
    problems = []
    by_sequence = {entry["sequence"]: entry["hash"] for entry in statement["entries"]}
    try:
        import base64

        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        # Each head names the key that signed it: the platform's keys change (a new key, a rotated secret), and the
        # heads signed before keep their own. Files from before keys were listed have the one public key.
        keys = {key_id: Ed25519PublicKey.from_public_bytes(base64.b64decode(public))
                for key_id, public in {**published.get("keys", {}),
                                       published.get("key_id", ""): published["public_key"]}.items()}
    except ImportError:
        keys = None
        print("note: install the cryptography package to check the heads' signatures")
    checked, later, last = 0, None, last_sequence(statement)
    for head in published["heads"]:
        if keys is not None:
            key = keys.get(head.get("key_id", published.get("key_id", "")))
            if key is None:
                problems.append(f"the head published on {head['date']} names a key the file does not list")
                continue
            message = json.dumps({"tenant": published["tenant"], "date": head["date"], "sequence": head["sequence"],
                                  "hash": head["hash"]}, sort_keys=True, separators=(",", ":")).encode()
            try:
                key.verify(base64.b64decode(head["signature"]), message)
            except Exception:  # noqa: BLE001 (any failure of the signature check is the same finding)
                problems.append(f"the head published on {head['date']} has a bad signature")
                continue
        if head["sequence"] > last:
            later = max(later or head, head, key=lambda h: h["sequence"])
        elif head["sequence"] in by_sequence:
            checked += 1
            if by_sequence[head["sequence"]] != head["hash"]:
                problems.append(f"entry {head['sequence']} differs from the head published on {head['date']}")
    if later is not None:
        problems.append(f"the statement ends at entry {last}, but entry {later['sequence']} was published on "
                        f"{later['date']}: the statement is out of date or cut short")
    print(f"{checked} published heads fall inside this statement and were compared")
    return problems


if __name__ == "__main__":
    arguments = sys.argv[1:]
    heads_file = None
    if "--heads" in arguments:
        at = arguments.index("--heads")
        heads_file = arguments[at + 1]
        del arguments[at:at + 2]
    with open(arguments[0], encoding="utf-8") as handle:
        statement = json.load(handle)
    found = verify(statement, arguments[1] if len(arguments) > 1 else None)
    if heads_file:
        with open(heads_file, encoding="utf-8") as handle:
            found += check_heads(statement, json.load(handle))
    for problem in found:
        print("PROBLEM:", problem)
    print("statement verifies" if not found else "statement does NOT verify")
    sys.exit(1 if found else 0)
