"""Learning paths keep their description rendered from Markdown, as items and bundles do: render the existing ones."""

from django.db import migrations, models

BATCH = 500


def render_descriptions(apps, schema_editor):
    from catalog.text import render_rich_text

    LearningPath = apps.get_model("catalog", "LearningPath")
    changed = []
    for path in LearningPath.objects.only("description", "description_html").order_by("pk").iterator(chunk_size=BATCH):
        path.description_html = render_rich_text(path.description)
        changed.append(path)
    LearningPath.objects.bulk_update(changed, ["description_html"], batch_size=BATCH)


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0009_file_digests'),
    ]

    operations = [
        migrations.AddField(
            model_name='learningpath',
            name='description_html',
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(render_descriptions, migrations.RunPython.noop),
    ]
