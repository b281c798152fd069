"""The platform fee moved to the storefront, where only the operator sets it: each storefront keeps the fee of its
latest split rule version."""

from django.db import migrations
from django.db.models import OuterRef, Subquery


def from_latest_rule(apps, schema_editor):
    Tenant = apps.get_model("marketplace", "Tenant")
    SplitRule = apps.get_model("payments", "SplitRule")
    latest = SplitRule.objects.filter(tenant=OuterRef("pk")).order_by("-version").values("platform_fee_bp")[:1]
    for tenant in Tenant.objects.annotate(fee=Subquery(latest)).exclude(fee=None).iterator():
        Tenant.objects.filter(pk=tenant.pk).update(platform_fee_bp=tenant.fee)


class Migration(migrations.Migration):

    dependencies = [
        ("marketplace", "0002_tenant_platform_fee"),
        ("payments", "0014_subscription_currency"),
    ]

    operations = [migrations.RunPython(from_latest_rule, migrations.RunPython.noop)]
