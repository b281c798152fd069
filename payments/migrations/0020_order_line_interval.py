"""A plan's order line keeps the billing period its price pays for, so a plan changed while a checkout is open does
not change what the learner bought. Existing lines take their subscription's period, or else their plan's."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def from_subscription_or_plan(apps, schema_editor):
    OrderLine = apps.get_model("payments", "OrderLine")
    Subscription = apps.get_model("payments", "Subscription")
    SubscriptionPlan = apps.get_model("payments", "SubscriptionPlan")
    lines = OrderLine.objects.filter(plan__isnull=False)
    lines.filter(subscription__isnull=False).update(interval=Subquery(
        Subscription.objects.filter(pk=OuterRef("subscription_id")).values("interval")[:1]))
    lines.filter(subscription__isnull=True).update(interval=Subquery(
        SubscriptionPlan.objects.filter(pk=OuterRef("plan_id")).values("interval")[:1]))


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0019_head_public_keys'),
    ]

    operations = [
        migrations.AddField(
            model_name='orderline',
            name='interval',
            field=models.CharField(blank=True, help_text="A plan's line: the billing period its price pays for, as sold.", max_length=5),
        ),
        migrations.RunPython(from_subscription_or_plan, migrations.RunPython.noop),
    ]
