"""What a person's data export holds and what their account's erasure leaves, beyond the basics: provider events,
promoter links, cached pages, creator profiles and what the team wrote about them."""

import json

from django.urls import reverse
from django_scopes import scope, scopes_disabled

from accounts.models import Role
from accounts.privacy import user_erase
from catalog.models import ItemVersion
from marketplace.models import AuditLog
from payments.ledger import ledger_verify
from payments.models import Order, Promoter, ReferralTouch, WebhookEvent
from payments.promoters import promoter_decide
from tests.catalog.test_admin import item_form
from tests.conftest import host_client
from tests.factories import catalog_creator, catalog_item, grant, member
from tests.payments.test_checkout import buy
from tests.payments.test_promoters import programme, promoter  # noqa: F401  (fixture)
from tests.payments.test_stripe import alpha, course, start, stripe_api  # noqa: F401  (fixtures)

# --- the payment provider's events --------------------------------------------------------------------------------

def test_erasure_takes_the_persons_address_out_of_the_stored_provider_events(alpha, course, stripe_api):  # noqa: F811
    """Each applied provider event is kept whole (``WebhookEvent.payload``), and Stripe's checkout session carries
    the buyer's address (``customer_email``, ``customer_details``), a dispute its evidence about the customer. The
    events stay as the record of what the provider reported; the person's details in them go. Another buyer's
    events keep theirs."""
    learner = member(alpha, email="lin.private@example.com")
    other = member(alpha, email="mei.keeps@example.com")
    started = start(alpha, learner, course)
    assert stripe_api.complete(started.payment.provider_ref)["delivery"]["status"] == 200
    assert stripe_api.complete(start(alpha, other, course, key="attempt-2").payment.provider_ref)[
        "delivery"]["status"] == 200
    with scope(tenant=alpha):
        charge = type(started.payment).objects.get(pk=started.payment.pk).provider_charge_ref
    dispute = {"id": "evt_dispute_lin", "object": "event", "type": "charge.dispute.created",
               "data": {"object": {"id": "dp_lin", "object": "dispute", "amount": 10000, "currency": "usd",
                                   "payment_intent": charge, "reason": "fraudulent", "status": "needs_response",
                                   "evidence": {"customer_email_address": "Lin.Private@example.com",
                                                "customer_name": "Lin Private"}}}}
    status, answer = stripe_api.deliver(json.dumps(dispute))
    assert (status, answer) == (200, {"result": "applied"})
    with scopes_disabled():
        stored = json.dumps([e.payload for e in WebhookEvent.objects.all()]).lower()
    assert stored.count("lin.private@example.com") == 2 and "lin private" in stored

    user_erase(user=learner)

    with scopes_disabled():
        events = list(WebhookEvent.objects.all())
        stored = json.dumps([e.payload for e in events]).lower()
    assert len(events) == 3
    assert "lin.private@example.com" not in stored and "lin private" not in stored
    assert "mei.keeps@example.com" in stored
    [kept] = [e for e in events if e.event_id == "evt_dispute_lin"]
    assert kept.payload["data"]["object"]["reason"] == "fraudulent"


# --- promoters ------------------------------------------------------------------------------------------------------

def test_a_promoter_who_deleted_their_account_earns_no_more_commissions(tenant_a, programme):  # noqa: F811
    """Their old link is still posted around the web. Were their profile left approved, each sale through it would
    book a commission to a payee who no longer exists and can be neither paid nor reached: the profile is suspended
    (the audit log says so), and a recruiter who deleted their account earns no second level either."""
    recruiter = promoter(tenant_a)
    gone = promoter(tenant_a)
    recruited = promoter(tenant_a, recruited_by=recruiter)
    user_erase(user=gone.user)
    user_erase(user=recruiter.user)
    with scope(tenant=tenant_a):
        assert Promoter.objects.get(pk=gone.pk).status == Promoter.Status.SUSPENDED
        assert AuditLog.objects.filter(action="payments.promoter_suspended", target_id=str(gone.pk)).exists()

    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    client.get(f"/item/{programme.slug}/?ref={gone.code}")
    buy(client, f"item={programme.slug}")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        assert order.status == "paid" and order.promoter_id is None
        assert not ReferralTouch.objects.filter(promoter=gone).exists()

    # A touch recorded while they still had their account earns nothing once it is gone, and their recruit's sale
    # earns them no second level.
    other = member(tenant_a)
    client = host_client("alpha.test", other)
    client.get(f"/item/{programme.slug}/?ref={recruited.code}")
    with scope(tenant=tenant_a):
        # Were the team to approve them again, attribution still passes them by.
        Promoter.objects.filter(pk__in=[gone.pk, recruiter.pk]).update(status=Promoter.Status.APPROVED)
        ReferralTouch.objects.create(tenant=tenant_a, promoter=Promoter.objects.get(pk=gone.pk), user=other)
    buy(client, f"item={programme.slug}")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=other)
        assert (order.promoter, order.promoter_second_level) == (recruited, None)


def test_the_team_cannot_approve_the_promoter_profile_of_someone_whose_account_is_gone(tenant_a, programme):  # noqa: F811
    """Approving it would only look like it works (attribution passes them by): the admin says why it is refused,
    and approves the others chosen with it."""
    gone, kept = promoter(tenant_a), promoter(tenant_a)
    user_erase(user=gone.user)
    with scope(tenant=tenant_a):
        Promoter.objects.filter(pk=kept.pk).update(status=Promoter.Status.SUSPENDED)
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    response = owner.post(reverse("admin:payments_promoter_changelist"), {
        "action": "approve", "_selected_action": [gone.pk, kept.pk]}, follow=True)
    assert response.status_code == 200
    assert f"{gone.code}: This person&#x27;s account is gone" in response.content.decode()
    with scope(tenant=tenant_a):
        statuses = dict(Promoter.objects.values_list("pk", "status"))
    assert (statuses[gone.pk], statuses[kept.pk]) == ("suspended", "approved")


# --- pages showing the person -------------------------------------------------------------------------------------

def test_item_pages_stop_showing_an_erased_reviewers_name_and_words_at_once(
        tenant_a, django_capture_on_commit_callbacks):
    """Item pages are cached for minutes per catalog generation: erasure starts a new one, or the cached page would
    go on showing who they were and what they wrote."""
    item = catalog_item(tenant_a, title="Free Article")
    learner = member(tenant_a, display_name="Lin Xiaoming")
    with django_capture_on_commit_callbacks(execute=True):
        posted = host_client("alpha.test", learner).post(f"/item/{item.slug}/review/",
                                                         {"rating": "4", "body": "My private thoughts on this"})
    assert posted.status_code == 302
    before = host_client("alpha.test").get(f"/item/{item.slug}/").content.decode()
    assert "Lin Xiaoming" in before and "My private thoughts" in before

    with django_capture_on_commit_callbacks(execute=True):
        user_erase(user=learner)

    for client in (host_client("alpha.test"), host_client("alpha.test", member(tenant_a))):
        after = client.get(f"/item/{item.slug}/").content.decode()
        assert "Lin Xiaoming" not in after and "My private thoughts" not in after


def test_a_creator_profile_named_after_the_persons_address_is_renamed_on_erasure(
        tenant_a, django_capture_on_commit_callbacks):
    """Profiles made for a creator without a display name used to be named after their address's local part. The
    item's credits, its search text and the creator's page would go on showing "lin.private" from an address they
    deleted: such a profile is renamed. A name the creator or the team chose stays: it is how the work is
    credited."""
    from catalog.models import Creator

    writer = member(tenant_a, Role.CREATOR, email="lin.private@example.com")
    chosen = member(tenant_a, Role.CREATOR, email="mei@example.com")
    profile = catalog_creator(tenant_a, "lin.private", writer)
    with scopes_disabled():
        Creator.objects.filter(pk=profile.pk).update(slug="linprivate")
    named = catalog_creator(tenant_a, "Mei Chen", chosen)
    item = catalog_item(tenant_a, title="Fresh", creators=[profile, named])
    page = host_client("alpha.test").get(f"/item/{item.slug}/").content.decode()
    assert "lin.private" in page

    with django_capture_on_commit_callbacks(execute=True):
        user_erase(user=writer)
        user_erase(user=chosen)

    with scope(tenant=tenant_a):
        profile.refresh_from_db()
        named.refresh_from_db()
        item.refresh_from_db()
    assert "lin" not in profile.name.lower() and "lin" not in profile.slug
    assert (named.name, named.slug) == ("Mei Chen", "mei-chen")
    assert "lin" not in item.search_text
    page = host_client("alpha.test").get(f"/item/{item.slug}/").content.decode()
    assert "lin.private" not in page and "linprivate" not in page and "Mei Chen" in page
    # The published version, which distribution pushes, credits the new name; the chain still verifies.
    with scope(tenant=tenant_a):
        [version] = ItemVersion.objects.filter(item=item)
        assert [c["name"] for c in version.snapshot["creators"]] == [profile.name, "Mei Chen"]
        assert ledger_verify(tenant=tenant_a).ok


def test_a_creator_without_a_display_name_is_not_credited_by_their_address(tenant_a):
    """A creator's first item makes their profile; without a display name it is not named after their address,
    which they never chose to publish."""
    from catalog.models import ContentItem, Creator

    writer = member(tenant_a, Role.CREATOR, email="lin.private@example.com")
    data = item_form(ContentItem(kind="article", title="Fresh", slug="fresh", language="en", level="beginner",
                                 price=0))
    for field in ("lessons-TOTAL_FORMS", "lessons-INITIAL_FORMS", "item_creators-TOTAL_FORMS",
                  "item_creators-INITIAL_FORMS"):
        data.pop(field)
    assert host_client("alpha.test", writer).post(reverse("admin:catalog_contentitem_add"), data).status_code == 302
    with scope(tenant=tenant_a):
        profile = Creator.objects.get(user=writer)
    assert profile.name == "Creator" and profile.slug == "creator"
    assert "lin" not in profile.name.lower() and "lin" not in profile.slug


# --- the export -----------------------------------------------------------------------------------------------------

def test_the_export_holds_the_audit_entries_the_team_wrote_about_the_person(tenant_a, programme):  # noqa: F811
    """The export held only the entries the person made. What the team recorded about them is held about them
    too: their promoter profile suspended (an entry about one of their rows), access granted to them with the
    team's reference (an entry naming their account). Entries about other people's rows are not theirs."""
    learner = promoter(tenant_a)
    bystander = promoter(tenant_a)
    owner = member(tenant_a, Role.OWNER, mfa=True)
    with scope(tenant=tenant_a):
        promoter_decide(promoter=learner, status="suspended", actor=owner)
        promoter_decide(promoter=bystander, status="rejected", actor=owner)
    with scope(tenant=tenant_a):
        from payments.services import entitlement_grant

        entitlement_grant(tenant=tenant_a, user=learner.user, actor=owner, item=programme, reference="TICKET-42")
    grant(tenant_a, bystander.user, item=programme)

    data = json.loads(host_client("alpha.test", learner.user).get("/account/privacy/export/").content)
    [storefront] = data["storefronts"]
    about = storefront["recorded_about_you"]
    actions = [entry["action"] for entry in about]
    assert "payments.promoter_suspended" in actions and "payments.entitlement_granted" in actions
    assert "payments.promoter_rejected" not in actions  # the bystander's
    [granted] = [entry for entry in about if entry["action"] == "payments.entitlement_granted"]
    assert granted["data"]["reference"] == "TICKET-42"
    assert all("actor" not in entry for entry in about)  # which colleague wrote it is the team's business
    # What they did themselves is in their activity, once.
    assert "payments.promoter_applied" in [entry["action"] for entry in storefront["activity"]]
    assert "payments.promoter_applied" not in actions


def test_a_creator_name_they_go_by_stays_after_erasure_even_if_it_matches_their_mailbox(
        tenant_a, django_capture_on_commit_callbacks):
    """Only a name made from the address is taken away: "Mei" was their display name (mei@...), which the profile
    was named after, and the profile and its page stay as they were."""
    writer = member(tenant_a, Role.CREATOR, email="mei@example.com", display_name="Mei")
    profile = catalog_creator(tenant_a, "Mei", writer)
    catalog_item(tenant_a, title="Fresh", creators=[profile])
    with django_capture_on_commit_callbacks(execute=True):
        user_erase(user=writer)
    with scope(tenant=tenant_a):
        profile.refresh_from_db()
    assert (profile.name, profile.slug) == ("Mei", "mei")
    assert host_client("alpha.test").get("/creators/mei/").status_code == 200
