"""What the hash chain alone does not catch: moved postings, truncated tails, rewritten accounts, stale statements;
and intact books read while sales keep committing must still verify."""

import json
import subprocess
import sys
import threading
from datetime import UTC, date
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from marketplace import tenancy
from payments import ledger
from payments.heads import head_publish, heads_document
from payments.models import GENESIS_HASH, JournalEntry, LedgerAccount, LedgerHead, Posting
from tests.conftest import operator_client
from tests.payments.test_ledger import books, buy, command_output, settle, shop, tamper  # noqa: F401 (fixtures)

SCRIPT = Path(__file__).parents[2] / "docs" / "verify_statement.py"


@pytest.fixture
def sold(db, request) -> SimpleNamespace:
    """Alpha's shop after three sales and a partial refund (entries #1..#4), from the ledger tests."""
    tenant, items, channels = request.getfixturevalue("shop")
    _tenant, entries = request.getfixturevalue("books")
    return SimpleNamespace(tenant=tenant, entries=entries, items=items, channels=channels)


def verify(tenant):
    with tenancy.activate(tenant):
        return ledger.ledger_verify(tenant=tenant)


def creator_accounts(tenant, name: str) -> list[LedgerAccount]:
    with scopes_disabled():
        return list(LedgerAccount.objects.filter(tenant=tenant, creator__name=name))


def statement_of(tenant, name: str) -> dict:
    with tenancy.activate(tenant):
        return ledger.statement_proof(tenant=tenant, accounts=creator_accounts(tenant, name))


def run_script(tmp_path, statement: dict, *arguments: str, heads: dict | None = None) -> tuple[int, str]:
    """The participant's own check, as documented: the script in a separate Python process."""
    (tmp_path / "statement.json").write_text(json.dumps(statement))
    command = [sys.executable, str(SCRIPT), str(tmp_path / "statement.json"), *arguments]
    if heads is not None:
        (tmp_path / "heads.json").write_text(json.dumps(heads))
        command += ["--heads", str(tmp_path / "heads.json")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout


def published_heads(tenant, on: date) -> dict:
    with tenancy.activate(tenant):
        head_publish(tenant=tenant, on=on)
        return json.loads(json.dumps(heads_document(tenant=tenant)))


# --- reading while sales commit (PostgreSQL) ------------------------------------------------------------------------

def sale_commits_elsewhere(tenant, item) -> None:
    """A learner's payment booked and committed by another connection, as a web worker would."""
    failure: list[BaseException] = []

    def work():
        try:
            with tenancy.activate(tenant):
                settle(tenant, buy(tenant, item))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            failure.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive() and not failure, failure


def read_while_a_sale_commits(tenant, item, read):
    """Call ``read()`` in the tenant's scope once for every query it makes, with a sale committing just before that
    query; return each result."""
    results = []
    for at in range(1, 50):
        seen = []

        def before_query(execute, sql, params, many, context, at=at, seen=seen):
            seen.append(sql)
            if len(seen) == at:
                sale_commits_elsewhere(tenant, item)
            return execute(sql, params, many, context)

        with tenancy.activate(tenant), connection.execute_wrapper(before_query):
            result = read()
        if len(seen) < at:
            return results
        results.append(result)
    raise AssertionError("the read never ran out of queries")


@pytest.mark.postgres
@pytest.mark.usefixtures("on_postgres")
class TestReadsWhileSalesCommit:
    def test_ledger_verify_passes_intact_books_whatever_query_a_sale_commits_before(self, transactional_db, sold):
        tenant, tea = sold.tenant, sold.items[0]
        results = read_while_a_sale_commits(tenant, tea, lambda: ledger.ledger_verify(tenant=tenant))
        assert len(results) >= 3
        assert [r.problem for r in results if not r.ok] == []
        assert verify(tenant).entries == 7 + len(results)  # one sale committed during each read

    def test_a_statement_built_while_a_sale_commits_verifies(self, transactional_db, sold, tmp_path):
        tenant, tea = sold.tenant, sold.items[0]
        accounts = creator_accounts(tenant, "Lin Wei")
        statements = read_while_a_sale_commits(
            tenant, tea, lambda: ledger.statement_proof(tenant=tenant, accounts=accounts))
        assert len(statements) >= 3
        for statement in statements:
            code, output = run_script(tmp_path, statement)
            assert code == 0, output

    def test_a_payees_statement_built_while_a_sale_commits_ends_at_its_chain_head(self, transactional_db, sold):
        """The payee statement (admin CSV, "My earnings", the promoter's page) shows nothing past the chain head it
        ends with, so it agrees with the verifiable statement taken at the same moment."""
        from payments.payouts import statements

        tenant, tea = sold.tenant, sold.items[0]
        results = read_while_a_sale_commits(tenant, tea, lambda: statements(tenant=tenant, kind="creator"))
        assert len(results) >= 2
        assert [(line.sequence, st.chain_sequence) for result in results for st in result for line in st.lines
                if line.sequence > st.chain_sequence] == []


# --- signed published heads -----------------------------------------------------------------------------------------

def test_removing_the_newest_entry_and_rolling_the_head_back_is_found_by_its_published_head(sold):
    tenant, entries = sold.tenant, sold.entries
    with tenancy.activate(tenant):
        head_publish(tenant=tenant, on=date(2026, 11, 23))
    tamper("DELETE FROM payments_posting WHERE entry_id = %s", [entries[4].pk])
    tamper("DELETE FROM payments_journalentry WHERE id = %s", [entries[4].pk])
    with scopes_disabled():
        LedgerHead.objects.filter(tenant=tenant).update(sequence=entries[3].sequence, hash=entries[3].hash)
    result = verify(tenant)
    assert (result.ok, result.broken_at) == (False, entries[4].sequence)
    assert "published on 2026-11-23" in result.problem


def test_an_entry_rewritten_with_a_fresh_hash_is_found_by_its_published_head(sold):
    tenant, entries = sold.tenant, sold.entries
    with tenancy.activate(tenant):
        head_publish(tenant=tenant, on=date(2026, 11, 23))
        last = entries[4]
        rows = list(Posting.objects.filter(entry=last).values_list("account__code", "currency", "amount"))
        forged = ledger.entry_hash(
            tenant_slug=tenant.slug, sequence=last.sequence, kind=last.kind, memo="Sale rewritten",
            order_number=last.order.number,
            created_at=last.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
            previous_hash=last.previous_hash, postings=rows)
    tamper("UPDATE payments_journalentry SET memo = %s, hash = %s WHERE id = %s", ["Sale rewritten", forged, last.pk])
    with scopes_disabled():
        LedgerHead.objects.filter(tenant=tenant).update(hash=forged)
    result = verify(tenant)
    assert (result.ok, result.broken_at) == (False, last.sequence)
    assert "differs from the head published on 2026-11-23" in result.problem


def test_an_entry_added_past_the_head_is_found(sold):
    tenant, entries = sold.tenant, sold.entries
    with scope(tenant=tenant):
        revenue = ledger.account_for(tenant=tenant, code="tenant", kind="tenant", currency="CNY", name="Revenue")
        fee = ledger.account_for(tenant=tenant, code="platform", kind="platform", currency="CNY", name="Fee")
        extra = JournalEntry.objects.create(tenant=tenant, sequence=entries[4].sequence + 1, kind="reversal",
                                            memo="by hand", created_at=entries[4].created_at,
                                            previous_hash=entries[4].hash, hash="e" * 64)
        Posting.objects.create(tenant=tenant, entry=extra, account=revenue, amount=900, currency="CNY")
        Posting.objects.create(tenant=tenant, entry=extra, account=fee, amount=-900, currency="CNY")
    result = verify(tenant)
    assert (result.ok, result.broken_at) == (False, extra.sequence)


# --- postings and accounts across storefronts -----------------------------------------------------------------------

def test_a_posting_moved_to_another_storefronts_account_with_the_same_code_is_found(sold, tenant_b):
    tenant, entries = sold.tenant, sold.entries
    with scope(tenant=tenant_b):
        theirs = ledger.account_for(tenant=tenant_b, code="platform", kind="platform", currency="CNY", name="Fee")
    with scopes_disabled():
        posting = Posting.objects.get(entry=entries[1], account__code="platform")
    tamper("UPDATE payments_posting SET account_id = %s WHERE id = %s", [theirs.pk, posting.pk])
    result = verify(tenant)
    assert (result.ok, result.broken_at) == (False, entries[1].sequence)
    assert "another storefront" in result.problem


def test_a_posting_moved_to_the_same_code_in_another_currency_is_found(sold):
    tenant, entries = sold.tenant, sold.entries
    with scope(tenant=tenant):
        dollars = ledger.account_for(tenant=tenant, code="platform", kind="platform", currency="USD", name="Fee")
    with scopes_disabled():
        posting = Posting.objects.get(entry=entries[2], account__code="platform")
    tamper("UPDATE payments_posting SET account_id = %s WHERE id = %s", [dollars.pk, posting.pk])
    result = verify(tenant)
    assert (result.ok, result.broken_at) == (False, entries[2].sequence)
    assert "currency" in result.problem


def test_postings_hung_on_another_storefronts_entry_are_found(sold, tenant_b):
    """Balanced postings of beta's added to an entry of alpha's change beta's balances: beta's books no longer
    follow from its chain."""
    entries = sold.entries
    with scope(tenant=tenant_b):
        revenue = ledger.account_for(tenant=tenant_b, code="tenant", kind="tenant", currency="CNY", name="Revenue")
        fee = ledger.account_for(tenant=tenant_b, code="platform", kind="platform", currency="CNY", name="Fee")
        ledger.entry_post(tenant=tenant_b, kind="reversal", postings=[(revenue, 100), (fee, -100)], memo="genuine")
    assert verify(tenant_b).ok
    with scope(tenant=tenant_b):
        Posting.objects.create(tenant=tenant_b, entry=entries[1], account=revenue, amount=-5000, currency="CNY")
        Posting.objects.create(tenant=tenant_b, entry=entries[1], account=fee, amount=5000, currency="CNY")
    result = verify(tenant_b)
    assert not result.ok
    assert "belong to no entry of its chain" in result.problem


# --- the participant's script ---------------------------------------------------------------------------------------

def test_a_statement_ending_before_a_published_head_is_refused_as_out_of_date(sold, tmp_path):
    tenant = sold.tenant
    statement = statement_of(tenant, "Lin Wei")
    heads = published_heads(tenant, date(2026, 11, 23))
    assert run_script(tmp_path, statement, heads=heads)[0] == 0
    dropped = statement["entries"].pop()
    statement["head"] = {"sequence": dropped["sequence"] - 1, "hash": dropped["previous_hash"]}
    assert run_script(tmp_path, statement)[0] == 0  # on its own, a shorter chain is still a chain
    code, output = run_script(tmp_path, statement, heads=heads)
    assert code == 1
    assert "out of date or cut short" in output


def test_published_heads_of_another_storefront_are_refused(sold, tenant_b, tmp_path):
    tenant = sold.tenant
    statement = statement_of(tenant, "Lin Wei")
    beta_heads = published_heads(tenant_b, date(2026, 11, 23))
    code, output = run_script(tmp_path, statement, heads=beta_heads)
    assert code == 1
    assert "storefront 'beta'" in output
    statement["tenant"] = "beta"  # relabelled to match: its entries are still alpha's
    code, output = run_script(tmp_path, statement, heads=beta_heads)
    assert code == 1
    assert "not in storefront 'beta''s chain" in output


def test_a_cut_short_statement_whose_head_claims_a_later_entry_is_refused(sold, tmp_path):
    """The head is only believed as the last entry shown: claiming a later sequence would put every published head
    inside the statement's range, where no entry is there to be compared with it."""
    tenant = sold.tenant
    statement = statement_of(tenant, "Lin Wei")
    heads = published_heads(tenant, date(2026, 11, 23))
    dropped = statement["entries"].pop()
    statement["head"] = {"sequence": 10**9, "hash": dropped["previous_hash"]}
    code, output = run_script(tmp_path, statement, heads=heads)
    assert code == 1
    assert f"claims entry {10**9}, but the statement ends at entry {dropped['sequence'] - 1}" in output
    assert "out of date or cut short" in output


def test_a_cut_short_statement_cannot_skip_past_the_published_heads(sold, tmp_path):
    """An entry made up with a far later sequence, linked to the last real one, would leave the published heads
    between them unchecked: one chain has no gaps."""
    tenant = sold.tenant
    statement = statement_of(tenant, "Lin Wei")
    heads = published_heads(tenant, date(2026, 11, 23))
    dropped = statement["entries"].pop()
    made_up = {**dropped, "sequence": 10**9, "memo": "Nothing to see"}
    made_up.pop("postings", None)
    made_up["hash"] = ledger.entry_hash(
        tenant_slug=tenant.slug, sequence=10**9, kind=made_up["kind"], memo=made_up["memo"],
        order_number=made_up["order"], created_at=made_up["created_at"], previous_hash=made_up["previous_hash"],
        postings=[])
    made_up["postings_digest"] = ledger.postings_digest([])
    statement["entries"].append(made_up)
    statement["head"] = {"sequence": 10**9, "hash": made_up["hash"]}
    code, output = run_script(tmp_path, statement, heads=heads)
    assert code == 1
    assert f"entry {10**9} follows entry {dropped['sequence'] - 1}" in output


def test_a_participant_without_entries_gets_a_statement_of_the_newest_entry(sold, tmp_path):
    tenant = sold.tenant
    heads = published_heads(tenant, date(2026, 11, 23))
    with tenancy.activate(tenant):
        statement = ledger.statement_proof(tenant=tenant, accounts=[])  # a promoter who has earned nothing yet
    assert [e["sequence"] for e in statement["entries"]] == [7] and "postings" not in statement["entries"][0]
    code, output = run_script(tmp_path, statement, heads=heads)
    assert code == 0 and "1 published heads fall inside this statement" in output, output
    statement["entries"] = []  # a head with nothing under it could claim any sequence
    code, output = run_script(tmp_path, statement, heads=heads)
    assert code == 1 and "no entries" in output


def test_only_an_empty_chain_has_a_statement_without_entries(tenant_b, tmp_path):
    with tenancy.activate(tenant_b):
        statement = ledger.statement_proof(tenant=tenant_b, accounts=[])
    assert statement["head"] == {"sequence": 0, "hash": GENESIS_HASH} and statement["entries"] == []
    assert run_script(tmp_path, statement)[0] == 0
    statement["head"] = {"sequence": 7, "hash": "a" * 64}
    code, output = run_script(tmp_path, statement)
    assert code == 1 and "no entries" in output


def test_an_entry_balanced_only_across_currencies_is_refused(tenant_a, tmp_path):
    """Yuan credited to the participant cannot be paid for with dollars: the ledger balances each currency, and so
    does the script. (The ledger refuses such an entry, so the statement is made up by hand.)"""
    postings = [("creator:1:held", "CNY", -500), ("clearing:sandbox", "USD", 500)]
    entry = ledger.entry_document(
        tenant_slug="alpha", sequence=1, kind="sale", memo="Sale ZK1", order_number="ZK1",
        created_at="2026-11-23T07:30:00.000000+00:00", previous_hash=GENESIS_HASH,
        digest=ledger.postings_digest(postings))
    entry["hash"] = ledger.entry_hash(
        tenant_slug="alpha", sequence=1, kind="sale", memo="Sale ZK1", order_number="ZK1",
        created_at="2026-11-23T07:30:00.000000+00:00", previous_hash=GENESIS_HASH, postings=postings)
    entry["postings"] = sorted([list(p) for p in postings])
    statement = {"tenant": "alpha", "accounts": ["creator:1:held"], "head": {"sequence": 1, "hash": entry["hash"]},
                 "entries": [entry]}
    code, output = run_script(tmp_path, statement)
    assert code == 1
    assert "entry 1 does not balance in CNY, USD" in output


def test_the_script_proves_the_chain_not_that_every_credit_of_the_participant_is_shown(sold, tmp_path):
    """As the docs say: an entry shown only by its digest may have credited the participant, so the printed balance
    covers the entries shown with postings and the participant compares them with their own records."""
    tenant = sold.tenant
    statement = statement_of(tenant, "Lin Wei")
    code, genuine = run_script(tmp_path, statement)
    assert code == 0
    shown = [entry for entry in statement["entries"] if "postings" in entry]
    del shown[-1]["postings"]
    code, hidden = run_script(tmp_path, statement, statement["head"]["hash"])
    assert code == 0 and hidden != genuine
    shown[0]["postings"][0][2] += 1  # but what is shown cannot be changed
    assert run_script(tmp_path, statement)[0] == 1


# --- the command ----------------------------------------------------------------------------------------------------

def test_the_command_checks_a_deactivated_storefronts_ledger_too(sold):
    """A storefront with a ledger is deactivated, never deleted: its books still back its payees' statements."""
    tenant, entries = sold.tenant, sold.entries
    tamper("UPDATE payments_journalentry SET memo = %s WHERE id = %s", ["Sale nothing to see", entries[2].pk])
    tenant.is_active = False
    tenant.save(update_fields=["is_active"])
    code, output = command_output()
    assert code == 1
    assert "alpha: broken at entry #5: its content does not match its hash" in output


# --- ledger accounts are immutable (PostgreSQL) ---------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.usefixtures("on_postgres")
class TestLedgerAccountGuard:
    @pytest.mark.parametrize("change", [
        "creator_id = %(other_creator)s", "promoter_id = %(promoter)s", "partner_id = %(partner)s",
        "tenant_id = %(other_tenant)s", "code = 'creator:0'", "currency = 'USD'", "kind = 'platform'",
    ])
    def test_whose_money_an_account_holds_cannot_be_changed(self, sold, tenant_b, change):
        tenant, channels = sold.tenant, sold.channels
        victim, other = creator_accounts(tenant, "Ada Byron")[0], creator_accounts(tenant, "Lin Wei")[0]
        values = {"account": victim.pk, "other_creator": other.creator_id, "promoter": channels["promoter"].pk,
                  "partner": channels["partner"].pk, "other_tenant": tenant_b.pk}
        with pytest.raises(IntegrityError, match="keep their owner"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute(f"UPDATE payments_ledgeraccount SET {change} WHERE id = %(account)s", values)
        with scopes_disabled():
            assert LedgerAccount.objects.get(pk=victim.pk).creator_id == victim.creator_id

    def test_an_account_cannot_be_deleted(self, sold):
        tenant = sold.tenant
        with scope(tenant=tenant):
            unused = ledger.account_for(tenant=tenant, code="spare", kind="tenant", currency="CNY", name="Spare")
            with pytest.raises(IntegrityError, match="keep their owner"), transaction.atomic():
                LedgerAccount.objects.filter(pk=unused.pk).delete()
            assert LedgerAccount.objects.filter(pk=unused.pk).exists()

    def test_the_display_name_may_change(self, sold):
        tenant = sold.tenant
        account = creator_accounts(tenant, "Ada Byron")[0]
        with scopes_disabled():
            LedgerAccount.objects.filter(pk=account.pk).update(name="Ada Lovelace (held)")
            assert LedgerAccount.objects.get(pk=account.pk).name == "Ada Lovelace (held)"
        assert verify(tenant).ok


# --- the storefront's slug ------------------------------------------------------------------------------------------

def test_the_operator_cannot_rename_a_storefronts_slug_once_it_exists(sold):
    tenant = sold.tenant
    operator = operator_client()
    domain = tenant.domains.get()
    response = operator.post(reverse("admin:marketplace_tenant_change", args=[tenant.pk]), {
        "slug": "alpha-academy", "name": "Alpha Academy Online", "primary_color": "#2563eb",
        "default_language": tenant.default_language, "currency": tenant.currency, "is_active": "on",
        "platform_fee_bp": tenant.platform_fee_bp,
        "domains-TOTAL_FORMS": "1", "domains-INITIAL_FORMS": "1", "domains-MIN_NUM_FORMS": "0",
        "domains-MAX_NUM_FORMS": "1000", "domains-0-id": str(domain.pk), "domains-0-tenant": str(tenant.pk),
        "domains-0-host": domain.host, "domains-0-is_primary": "on",
    })
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.name, tenant.slug) == ("Alpha Academy Online", "alpha")
    assert verify(tenant).ok
    page = operator.get(reverse("admin:marketplace_tenant_change", args=[tenant.pk])).content.decode()
    assert 'name="slug"' not in page and '<div class="readonly">alpha</div>' in page
    assert operator.get(reverse("admin:marketplace_tenant_add")).status_code == 200  # onboarding still sets it


# --- publications ---------------------------------------------------------------------------------------------------

def test_every_published_version_is_an_entry_of_the_chain(sold):
    """The chain records each publication: which item and version, its content's hash, its creators and their
    shares, and when. Publishing again adds the new version."""
    from catalog import services as catalog
    from catalog.models import ContentItem, ItemVersion

    tenant, (tea, _silk, paper) = sold.tenant, sold.items
    with tenancy.activate(tenant):
        ContentItem.objects.filter(pk=tea.pk).update(subtitle="Second edition")
        catalog.item_publish_changes(item=tea, actor=None)  # its version 2
        version = ItemVersion.objects.get(item=tea, number=2)
        entry = JournalEntry.objects.get(kind="publish", record__item=tea.pk, record__version=2)
        assert entry.record == {"item": tea.pk, "version": 2, "content_hash": version.content_hash,
                                "creators": [[c["creator"], c["share_bp"]] for c in version.snapshot["creators"]],
                                "published_at": version.published_at.astimezone(UTC).isoformat(
                                    timespec="microseconds")}
        assert not entry.postings.exists() and entry.sequence == 8
        assert len(JournalEntry.objects.get(kind="publish", record__item=paper.pk).record["creators"]) == 2
    assert verify(tenant).ok


@pytest.mark.parametrize("change", ["content", "remove", "unrecorded"])
def test_a_rewritten_removed_or_unrecorded_publication_is_found(sold, change):
    """The version rows are what distribution pushes and readers are shown: the chain must notice one rewritten
    after it was published, one removed, and one that never went through the chain."""
    from catalog.models import ItemVersion

    tenant, tea = sold.tenant, sold.items[0]
    with scopes_disabled():
        version = ItemVersion.objects.get(item=tea, number=1)
        recorded_at = JournalEntry.objects.get(kind="publish", record__item=tea.pk).sequence
        if change == "content":
            ItemVersion.objects.filter(pk=version.pk).update(content_hash="0" * 64)
        elif change == "remove":
            version.delete()
        else:
            ItemVersion.objects.create(tenant=tenant, item=tea, number=9, content_hash="1" * 64,
                                       snapshot=version.snapshot)
    result = verify(tenant)
    assert not result.ok
    if change == "unrecorded":
        assert (result.broken_at, "version 9 of item") == (7, result.problem[:len("version 9 of item")])
    else:
        assert result.broken_at == recorded_at and "changed or removed" in result.problem


def test_a_creators_statement_shows_the_publications_of_their_items(sold, tmp_path):
    tenant = sold.tenant
    heads = published_heads(tenant, date(2026, 11, 23))
    statement = statement_of(tenant, "Ada Byron")  # credited on Paper only
    records = [e["record"] for e in statement["entries"] if "record" in e]
    assert [(r["item"], r["version"]) for r in records] == [(sold.items[2].pk, 1)]
    assert all("record_digest" in e for e in statement["entries"] if e["kind"] == "publish")
    code, output = run_script(tmp_path, statement, heads=heads)
    assert code == 0 and f"published: item {sold.items[2].pk} version 1" in output, output

    forged = json.loads(json.dumps(statement))
    [entry] = [e for e in forged["entries"] if "record" in e]
    entry["record"]["creators"] = [[c, 10000 if n == 0 else 0] for n, (c, _share) in
                                   enumerate(entry["record"]["creators"])]
    code, output = run_script(tmp_path, forged, heads=heads)
    assert code == 1 and "publication record does not match its digest" in output


@pytest.mark.parametrize("version", ["3.7", "3.8", "3.9"])
def test_the_script_runs_on_the_oldest_pythons_participants_have(sold, tmp_path, version):
    """The system Python of macOS's command line tools and of older Debian and RHEL releases is 3.9 or older."""
    found = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python"))
    if not found:
        pytest.skip(f"no Python {version} on this machine")
    (tmp_path / "statement.json").write_text(json.dumps(statement_of(sold.tenant, "Lin Wei")))
    done = subprocess.run([str(found[-1]), str(SCRIPT), str(tmp_path / "statement.json")], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0 and "statement verifies" in done.stdout, done.stdout + done.stderr


# --- the published heads over time ----------------------------------------------------------------------------------

def test_heads_signed_before_the_signing_key_changed_still_verify(sold, settings, tmp_path):
    """The key is derived from SECRET_KEY until LEDGER_SIGNING_KEY is set (README): once the operator sets it, the
    heads signed before keep verifying with the key that signed them, which the file lists."""
    tenant = sold.tenant
    with tenancy.activate(tenant):
        head_publish(tenant=tenant, on=date(2026, 11, 22))
    settings.LEDGER_SIGNING_KEY = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="  # 32 bytes, base64
    with tenancy.activate(tenant):
        head_publish(tenant=tenant, on=date(2026, 11, 23))
        heads = json.loads(json.dumps(heads_document(tenant=tenant)))
    assert len(heads["keys"]) == 2 and heads["keys"][heads["key_id"]] == heads["public_key"]
    code, output = run_script(tmp_path, statement_of(tenant, "Lin Wei"), heads=heads)
    assert code == 0 and "2 published heads fall inside" in output, output

    heads["heads"][1]["key_id"] = heads["key_id"]  # the old head claimed by the new key: its signature fails
    code, output = run_script(tmp_path, statement_of(tenant, "Lin Wei"), heads=heads)
    assert code == 1 and "published on 2026-11-22 has a bad signature" in output


def test_a_deactivated_storefront_still_publishes_its_signed_heads(sold):
    """Its payees still check their statements against them; every other page of it is gone."""
    from tests.conftest import host_client

    tenant = sold.tenant
    with tenancy.activate(tenant):
        head_publish(tenant=tenant, on=date(2026, 11, 23))
    tenant.is_active = False
    tenant.save(update_fields=["is_active"])
    response = host_client("alpha.test").get("/ledger/heads.json")
    assert response.status_code == 200 and [h["sequence"] for h in response.json()["heads"]] == [7]
    assert host_client("alpha.test").get("/").status_code == 404
