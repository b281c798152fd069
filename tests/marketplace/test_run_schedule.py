"""The embedded default's beat: the schedule's tasks run in-process, so failed pushes are retried in the demo too."""

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_scopes import scopes_disabled

from distribution.models import Delivery
from tests.distribution.test_pipeline import make_channel, receiver  # noqa: F401  (fixture)
from tests.factories import catalog_item

pytestmark = pytest.mark.django_db


def test_a_due_retry_is_sent_when_its_schedule_entry_runs(tenant_a, receiver,  # noqa: F811
                                                          django_capture_on_commit_callbacks):
    make_channel(tenant_a, receiver.url)
    catalog_item(tenant_a, title="Waiting to retry")  # planned; its push would go after commit, which tests hold back
    with scopes_disabled():
        Delivery.objects.update(status="retrying", attempts=1, due_at=timezone.now() - timezone.timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):  # as a real commit would run the queued push
        call_command("run_schedule", "--run", "distribution-dispatch")
    with scopes_disabled():
        delivery = Delivery.objects.get()
    assert delivery.status == "delivered" and sum(receiver.arrivals.values()) == 1


def test_an_entry_not_in_the_schedule_is_refused_with_the_ones_it_has():
    with pytest.raises(CommandError, match="Not in the schedule: nightly-nothing. It has: .*distribution-dispatch"):
        call_command("run_schedule", "--run", "nightly-nothing")
