"""A subscription keeps the currency its price is in, so a storefront that changes its currency does not renew an
old price's minor units in the new currency."""

from django.db import migrations, models


def from_first_order(apps, schema_editor):
    """Existing prices were taken from the first order (0008), so its currency is theirs; a subscription without
    one falls back to its storefront's currency."""
    Subscription = apps.get_model("payments", "Subscription")
    for sub in Subscription.objects.select_related("tenant", "entitlement__order").iterator():
        order = sub.entitlement.order
        sub.currency = order.currency if order is not None else sub.tenant.currency
        sub.save(update_fields=["currency"])


class Migration(migrations.Migration):

    dependencies = [
        ("payments", "0013_ledger_balance_check_definer"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="currency",
            field=models.CharField(
                default="", max_length=3, verbose_name="currency",
                help_text="The currency of the price: the storefront's when the learner subscribed. Renewals charge "
                          "in it."),
            preserve_default=False,
        ),
        migrations.RunPython(from_first_order, migrations.RunPython.noop),
    ]
