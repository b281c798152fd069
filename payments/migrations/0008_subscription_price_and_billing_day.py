from django.db import migrations, models


def from_first_order(apps, schema_editor):
    """Existing subscriptions keep the price their first order was sold at and the day they started on."""
    Subscription = apps.get_model("payments", "Subscription")
    for sub in Subscription.objects.select_related("plan", "entitlement__order").iterator():
        order = sub.entitlement.order
        sub.price = order.subtotal if order is not None else sub.plan.price
        sub.billing_day = sub.created_at.day
        sub.save(update_fields=["price", "billing_day"])


class Migration(migrations.Migration):

    dependencies = [
        ("payments", "0007_partner_commissions"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="price",
            field=models.PositiveIntegerField(
                default=0, help_text="What each renewal charges: the plan's price when the learner subscribed.",
                verbose_name="price per period"),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="subscription",
            name="billing_day",
            field=models.PositiveSmallIntegerField(
                default=1, help_text="Periods end on this day of the month (or the month's last day).",
                verbose_name="billing day"),
            preserve_default=False,
        ),
        migrations.RunPython(from_first_order, migrations.RunPython.noop),
    ]
