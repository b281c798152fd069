"""A subscription keeps the billing period it was sold with, as it keeps its price: a plan changed from monthly to
yearly must not renew its monthly subscribers for a year at the monthly price."""

from django.db import migrations, models


def from_plan(apps, schema_editor):
    """Existing subscriptions take their plan's period, the only record of it there is."""
    Subscription = apps.get_model("payments", "Subscription")
    SubscriptionPlan = apps.get_model("payments", "SubscriptionPlan")
    for plan_id, interval in SubscriptionPlan.objects.values_list("pk", "interval"):
        Subscription.objects.filter(plan_id=plan_id).update(interval=interval)


class Migration(migrations.Migration):

    dependencies = [
        ("payments", "0015_platform_fee_from_rules"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="interval",
            field=models.CharField(
                choices=[("month", "Monthly"), ("year", "Yearly")], default="month", max_length=5,
                help_text="The period the price pays for: the plan's when the learner subscribed. Renewals keep it.",
                verbose_name="billing period"),
            preserve_default=False,
        ),
        migrations.RunPython(from_plan, migrations.RunPython.noop),
    ]
