"""Each signed head keeps the public key that signed it, so heads signed before the platform's key changed still
verify. Heads already published were signed with the current key when their key id says so."""

from django.db import migrations, models


def current_key(apps, schema_editor):
    from payments.heads import key_id, public_key_b64

    ChainHeadPublication = apps.get_model("payments", "ChainHeadPublication")
    public = public_key_b64()
    ChainHeadPublication.objects.filter(key_id=key_id(public), public_key="").update(public_key=public)


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0018_publication_entries'),
    ]

    operations = [
        migrations.AddField(
            model_name='chainheadpublication',
            name='public_key',
            field=models.CharField(blank=True, help_text='The Ed25519 key that signed it (base64).', max_length=64),
        ),
        migrations.RunPython(current_key, migrations.RunPython.noop),
    ]
