"""Creators' shares: held through the refund window, then payable, then paid by a payout run; refunds claw back."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope

from accounts.models import Role
from payments.ledger import balances, ledger_verify
from payments.models import Order, Payout
from payments.payouts import creator_statements, payout_run, shares_release
from payments.services import refund_create
from tests.conftest import host_client
from tests.factories import catalog_creator, catalog_item, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db


def test_held_then_payable_then_paid_with_a_statement(tenant_a):
    ada = catalog_creator(tenant_a, "Ada")
    course = catalog_item(tenant_a, title="Course", price=10000, creators=[ada])
    learners = [member(tenant_a) for _ in range(2)]
    for learner in learners:
        buy(host_client("alpha.test", learner), f"item={course.slug}")
    with scope(tenant=tenant_a):
        [first, second] = Order.objects.filter(user__in=learners).order_by("id")
        refund_create(payment=second.payments.get(), amount=5000, actor=None)  # half of one sale back
        assert shares_release(tenant=tenant_a, now=timezone.now()) == 0  # still inside the refund window
        later = timezone.now() + timedelta(days=15)
        assert shares_release(tenant=tenant_a, now=later) == 2
        assert shares_release(tenant=tenant_a, now=later) == 0
        [statement] = creator_statements(tenant=tenant_a)
        # 4500 from each sale, 2250 clawed back by the half refund.
        assert (statement.held, statement.payable, statement.paid) == (0, 6750, 0)

        payouts = payout_run(tenant=tenant_a, actor=None, reference="BATCH-1")
        assert [(p.creator, p.amount) for p in payouts] == [(ada, 6750)]
        assert payout_run(tenant=tenant_a, actor=None) == []
        [statement] = creator_statements(tenant=tenant_a)
        assert (statement.payable, statement.paid) == (0, 6750)

        # A refund after the window claws back from what was payable (and is now owed back).
        refund_create(payment=first.payments.get(), amount=10000, actor=None)
        [statement] = creator_statements(tenant=tenant_a)
        assert statement.payable == -4500
        assert sum(balances(tenant=tenant_a).values()) == 0
        assert ledger_verify(tenant=tenant_a).ok


def test_the_admin_runs_payouts_and_serves_statements(tenant_a):
    ada = catalog_creator(tenant_a, "Ada")
    course = catalog_item(tenant_a, title="Course", price=10000, creators=[ada])
    buy(host_client("alpha.test", member(tenant_a)), f"item={course.slug}")
    with scope(tenant=tenant_a):
        shares_release(tenant=tenant_a, now=timezone.now() + timedelta(days=30))
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = owner.get(reverse("admin:payments_payout_changelist")).content.decode()
    assert "Ada" in page and "45.00" in page
    csv = owner.get(reverse("admin:payments_payout_statement", args=["creator", ada.pk])).content.decode()
    assert "chain head" in csv and "Payable,,,,45.00,CNY" in csv
    # The run first shows who would be paid what, and pays nothing until that is confirmed.
    confirm = owner.post(reverse("admin:payments_payout_run"), {"reference": "B1"})
    page = confirm.content.decode()
    assert confirm.status_code == 200 and "Pay 1 payee their payable balance?" in page
    assert "Ada (creator)" in page and "¥45.00" in page and "Reference: B1" in page
    with scope(tenant=tenant_a):
        assert not Payout.objects.exists()
    seen = re.search(r'name="seen" value="([0-9a-f]+)"', page).group(1)
    done = owner.post(reverse("admin:payments_payout_run"), {"reference": "B1", "seen": seen, "confirm": "1"},
                      follow=True)
    assert "1 payout made." in done.content.decode()
    with scope(tenant=tenant_a):
        assert Payout.objects.get().amount == 4500
    creator = host_client("alpha.test", member(tenant_a, Role.CREATOR))
    assert creator.get(reverse("admin:payments_payout_changelist")).status_code == 403


def test_the_operator_pays_out_a_deactivated_storefronts_payees(tenant_a, tenant_b):
    """A storefront the operator closed still owes its creators what they earned: on the platform host the operator
    chooses it, sees its statements, downloads them and runs its payouts, in its scope and no other's."""
    from tests.conftest import operator_client

    ada = catalog_creator(tenant_a, "Ada")
    buy(host_client("alpha.test", member(tenant_a)), f"item={catalog_item(tenant_a, price=10000, creators=[ada]).slug}")
    bob = catalog_creator(tenant_b, "Bob")
    buy(host_client("beta.test", member(tenant_b)), f"item={catalog_item(tenant_b, price=3000, creators=[bob]).slug}")
    for tenant in (tenant_a, tenant_b):
        with scope(tenant=tenant):
            shares_release(tenant=tenant, now=timezone.now() + timedelta(days=30))
    tenant_a.is_active = False
    tenant_a.save(update_fields=["is_active"])

    operator = operator_client()
    changelist = reverse("admin:payments_payout_changelist")
    page = operator.get(changelist).content.decode()
    assert "Alpha Academy (deactivated)" in page and "Ada" not in page  # nothing until a storefront is chosen
    page = operator.get(changelist, {"storefront": "alpha"}).content.decode()
    assert "Ada" in page and "45.00" in page and "Bob" not in page
    statement = operator.get(reverse("admin:payments_payout_statement_json", args=["creator", ada.pk]),
                             {"storefront": "alpha"}).json()
    assert statement["tenant"] == "alpha" and statement["accounts"]
    assert operator.get(reverse("admin:payments_payout_statement", args=["creator", bob.pk]),
                        {"storefront": "alpha"}).status_code == 404  # Bob is beta's
    with scope(tenant=tenant_b):
        payout_run(tenant=tenant_b, actor=None, reference="BETA-1")
    assert "BETA-1" not in operator.get(changelist, {"storefront": "alpha"}).content.decode()  # alpha's payouts only
    confirm = operator.post(reverse("admin:payments_payout_run"), {"storefront": "alpha", "reference": "CLOSE-1"})
    assert "Ada (creator)" in confirm.content.decode() and "Bob" not in confirm.content.decode()
    seen = re.search(r'name="seen" value="([0-9a-f]+)"', confirm.content.decode()).group(1)
    response = operator.post(reverse("admin:payments_payout_run"), {"storefront": "alpha", "reference": "CLOSE-1",
                                                                    "seen": seen, "confirm": "1"})
    assert response.status_code == 302 and response.url.endswith("?storefront=alpha")
    assert "CLOSE-1" in operator.get(changelist, {"storefront": "alpha"}).content.decode()
    with scope(tenant=tenant_a):
        assert [(p.creator_id, p.amount, p.reference) for p in Payout.objects.all()] == [(ada.pk, 4500, "CLOSE-1")]
        assert ledger_verify(tenant=tenant_a).ok
    with scope(tenant=tenant_b):
        assert list(Payout.objects.values_list("reference", flat=True)) == ["BETA-1"]


def test_a_payout_run_confirmed_on_balances_that_changed_since_pays_nothing_and_says_so(tenant_a):
    ada = catalog_creator(tenant_a, "Ada")
    course = catalog_item(tenant_a, title="Course", price=10000, creators=[ada])
    learners = [member(tenant_a) for _ in range(2)]
    buy(host_client("alpha.test", learners[0]), f"item={course.slug}")
    with scope(tenant=tenant_a):
        shares_release(tenant=tenant_a, now=timezone.now() + timedelta(days=30))
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = owner.post(reverse("admin:payments_payout_run"), {"reference": "B1"}).content.decode()
    seen = re.search(r'name="seen" value="([0-9a-f]+)"', page).group(1)
    # Another sale's share becomes payable before the team confirms what they saw.
    buy(host_client("alpha.test", learners[1]), f"item={course.slug}")
    with scope(tenant=tenant_a):
        shares_release(tenant=tenant_a, now=timezone.now() + timedelta(days=30))
    done = owner.post(reverse("admin:payments_payout_run"), {"reference": "B1", "seen": seen, "confirm": "1"},
                      follow=True)
    assert "The payable balances changed since you looked at them: check them again." in done.content.decode()
    with scope(tenant=tenant_a):
        assert not Payout.objects.exists()
        [statement] = creator_statements(tenant=tenant_a)
        assert (statement.payable, statement.paid) == (9000, 0)


def test_a_creator_verifies_their_statement_with_the_standalone_script(tenant_a, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    ada = catalog_creator(tenant_a, "Ada")
    bob = catalog_creator(tenant_a, "Bob")
    theirs = catalog_item(tenant_a, title="Bob's", price=3000, creators=[bob])
    course = catalog_item(tenant_a, title="Course", price=10000, creators=[ada])
    buy(host_client("alpha.test", member(tenant_a)), f"item={theirs.slug}")
    buy(host_client("alpha.test", member(tenant_a)), f"item={course.slug}")
    buy(host_client("alpha.test", member(tenant_a)), f"item={theirs.slug}")
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    proof = owner.get(reverse("admin:payments_payout_statement_json", args=["creator", ada.pk])).json()
    # Ada's statement starts at her item's publication, shown with its record, and proves the chain to the head;
    # her sale shows its postings, Bob's sales only their digest.
    assert [("record" in e, "postings" in e) for e in proof["entries"]] == [
        (True, False), (False, False), (False, True), (False, False)]
    script = Path(__file__).parents[2] / "docs" / "verify_statement.py"
    path = tmp_path / "statement.json"
    path.write_text(json.dumps(proof))
    ok = subprocess.run([sys.executable, str(script), str(path), proof["head"]["hash"]], capture_output=True,
                        text=True, check=False)
    assert ok.returncode == 0 and "statement verifies" in ok.stdout and "4500" in ok.stdout
    proof["entries"][2]["postings"][0][2] += 1  # claim one more minor unit
    path.write_text(json.dumps(proof))
    bad = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and "do not match their digest" in bad.stdout


def test_signed_chain_heads_are_published_and_checked_by_the_script(tenant_a, tmp_path):
    import base64
    import json
    import subprocess
    import sys
    from datetime import date
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from payments.heads import head_message, head_publish

    ada = catalog_creator(tenant_a, "Ada")
    course = catalog_item(tenant_a, title="Course", price=10000, creators=[ada])
    buy(host_client("alpha.test", member(tenant_a)), f"item={course.slug}")
    with scope(tenant=tenant_a):
        first = head_publish(tenant=tenant_a, on=date(2026, 11, 22))
        assert head_publish(tenant=tenant_a, on=date(2026, 11, 22)) == first  # once a day
    buy(host_client("alpha.test", member(tenant_a)), f"item={course.slug}")
    with scope(tenant=tenant_a):
        head_publish(tenant=tenant_a, on=date(2026, 11, 23))
    published = host_client("alpha.test").get("/ledger/heads.json").json()
    assert [h["sequence"] for h in published["heads"]] == [3, 2]  # after the course's publication (#1), each sale
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(published["public_key"]))
    for head in published["heads"]:
        key.verify(base64.b64decode(head["signature"]), head_message(
            tenant_slug="alpha", published_on=head["date"], sequence=head["sequence"], hash=head["hash"]))

    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    proof = owner.get(reverse("admin:payments_payout_statement_json", args=["creator", ada.pk])).json()
    script = Path(__file__).parents[2] / "docs" / "verify_statement.py"
    (tmp_path / "s.json").write_text(json.dumps(proof))
    (tmp_path / "h.json").write_text(json.dumps(published))
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "s.json"), "--heads", str(tmp_path / "h.json")],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0 and "2 published heads" in run.stdout, run.stdout
    published["heads"][1]["hash"] = "f" * 64  # a head that the chain does not pass through
    (tmp_path / "h.json").write_text(json.dumps(published))
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "s.json"), "--heads", str(tmp_path / "h.json")],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 1 and "bad signature" in run.stdout


def test_a_creator_sees_their_own_earnings_and_no_one_elses(tenant_a):
    person = member(tenant_a, Role.CREATOR)
    ada, bob = catalog_creator(tenant_a, "Ada", user=person), catalog_creator(tenant_a, "Bob")
    course = catalog_item(tenant_a, title="Course", price=10000, creators=[ada])
    theirs = catalog_item(tenant_a, title="Bob's", price=3000, creators=[bob])
    buy(host_client("alpha.test", member(tenant_a)), f"item={course.slug}")
    buy(host_client("alpha.test", member(tenant_a)), f"item={theirs.slug}")
    creator = host_client("alpha.test", person)
    home = creator.get(reverse("admin:index")).content.decode()
    assert reverse("admin:payments_payout_mine") in home
    page = creator.get(reverse("admin:payments_payout_mine")).content.decode()
    assert "45.00" in page and "Sale ZK" in page and "13.50" not in page  # Ada's part, not Bob's
    csv = creator.get(reverse("admin:payments_payout_statement", args=["creator", ada.pk])).content.decode()
    assert "Held (refund window),,,,45.00,CNY" in csv
    proof = creator.get(reverse("admin:payments_payout_statement_json", args=["creator", ada.pk])).json()
    assert proof["accounts"] == [f"creator:{ada.pk}:held"]
    for kind, party in (("creator", bob.pk), ("promoter", ada.pk), ("partner", ada.pk)):
        for name in ("admin:payments_payout_statement", "admin:payments_payout_statement_json"):
            assert creator.get(reverse(name, args=[kind, party])).status_code == 404
    # Staff without a creator profile have no earnings page of their own.
    staff = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    assert reverse("admin:payments_payout_mine") not in staff.get(reverse("admin:index")).content.decode()
    assert staff.get(reverse("admin:payments_payout_mine")).status_code == 404
    # A release is one row that moves her share from held to payable, not two lines that cancel out.
    with scope(tenant=tenant_a):
        shares_release(tenant=tenant_a, now=timezone.now() + timedelta(days=30))
    page = creator.get(reverse("admin:payments_payout_mine")).content.decode()
    release = re.search(r"<td>Held shares become payable (ZK\w+)</td>\s*<td>([^<]*)</td><td>([^<]*)</td>", page)
    assert release and release.groups()[1:] == ("-¥45.00", "¥45.00"), release
    assert page.count(f"Held shares become payable {release.group(1)}") == 1
