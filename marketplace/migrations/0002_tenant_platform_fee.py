"""A storefront's platform fee, set by the operator."""

import django.core.validators
import marketplace.models
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('marketplace', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='tenant',
            name='platform_fee_bp',
            field=models.PositiveIntegerField(default=marketplace.models.platform_fee_default, help_text="The platform's share of each sale, agreed with the tenant. Only the platform operator changes it; a change applies to orders placed afterwards.", validators=[django.core.validators.MaxValueValidator(10000)], verbose_name='platform fee (basis points)'),
        ),
    ]
