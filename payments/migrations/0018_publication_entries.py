"""Publications join the storefront's chain: an entry of kind "publish" records each published version (item,
version, content hash, creators and their shares, time), hashed with its record's digest. Versions published before
are appended now, oldest first, so the chain covers every publication.

The hashing is written out here, as it stood when this migration was made: a migration must not follow later code.
"""

import hashlib
import json
from datetime import UTC

from django.db import migrations, models
from django.utils import timezone


def _sha256_json(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                          .encode()).hexdigest()


def _timestamp(value) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def record_earlier_publications(apps, schema_editor):
    Tenant = apps.get_model("marketplace", "Tenant")
    ItemVersion = apps.get_model("catalog", "ItemVersion")
    JournalEntry = apps.get_model("payments", "JournalEntry")
    LedgerHead = apps.get_model("payments", "LedgerHead")
    for tenant in Tenant.objects.filter(pk__in=ItemVersion.objects.values("tenant_id")).order_by("pk"):
        head, _ = LedgerHead.objects.get_or_create(tenant=tenant, defaults={"sequence": 0, "hash": "0" * 64})
        for version in ItemVersion.objects.filter(tenant=tenant).order_by("published_at", "pk").iterator():
            record = {"item": version.item_id, "version": version.number, "content_hash": version.content_hash,
                      "creators": sorted([c["creator"], c["share_bp"]]
                                         for c in (version.snapshot or {}).get("creators") or []),
                      "published_at": _timestamp(version.published_at)}
            digest = _sha256_json(record)
            created_at = timezone.now()
            sequence = head.sequence + 1
            memo = f"v{version.number} {(version.snapshot or {}).get('title', '')}"[:200]
            document = {"tenant": tenant.slug, "sequence": sequence, "kind": "publish", "memo": memo, "order": "",
                        "created_at": _timestamp(created_at), "previous_hash": head.hash,
                        "postings_digest": _sha256_json([]), "record_digest": digest}
            entry_hash = _sha256_json(document)
            JournalEntry.objects.create(tenant=tenant, sequence=sequence, kind="publish", memo=memo,
                                        created_at=created_at, previous_hash=head.hash, hash=entry_hash,
                                        record=record, record_digest=digest)
            head.sequence, head.hash = sequence, entry_hash
        head.save(update_fields=["sequence", "hash"])


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0017_plan_on_sale_help'),
        ('catalog', '0004_search_text_width_folded'),
    ]

    operations = [
        migrations.AddField(
            model_name='journalentry',
            name='record',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='journalentry',
            name='record_digest',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.AlterField(
            model_name='journalentry',
            name='kind',
            field=models.CharField(choices=[('sale', 'Sale'), ('refund', 'Refund'), ('release', 'Held shares become payable'), ('payout', 'Payout'), ('reversal', 'Reversal'), ('publish', 'Publication')], max_length=10),
        ),
        migrations.RunPython(record_earlier_publications, migrations.RunPython.noop),
    ]
