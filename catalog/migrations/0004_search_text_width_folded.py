"""Search text folds full-width letters and digits (NFKC), as queries now do: rebuild it for the items there are."""

from django.db import migrations

BATCH = 500


def rebuild(apps, schema_editor):
    from catalog.text import plain_text, search_document

    ContentItem = apps.get_model("catalog", "ContentItem")
    items = (ContentItem.objects.only("title", "subtitle", "description_html", "search_text").order_by("pk")
             .prefetch_related("categories", "tags", "creators"))
    changed = []
    for item in items.iterator(chunk_size=BATCH):
        # The parts services.item_refresh_derived puts together, from the rich text already rendered.
        parts = [item.title, item.title, item.subtitle, plain_text(item.description_html)]
        parts += [c.name for c in item.categories.all()] + [t.name for t in item.tags.all()]
        parts += [c.name for c in item.creators.all()]
        text = search_document(*parts)
        if text != item.search_text:
            item.search_text = text
            changed.append(item)
    ContentItem.objects.bulk_update(changed, ["search_text"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_progress_in_learner_count")]
    operations = [migrations.RunPython(rebuild, migrations.RunPython.noop)]
