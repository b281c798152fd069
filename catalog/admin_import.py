"""The content items admin's CSV import (upload, map columns, preview, import) and export.

The ContentItem admin adds these views with ``import_export_urls(self) + super().get_urls()`` (before the default
``<object_id>/`` route) and registers ``export_selected_as_csv`` as an action. Views stay thin: the reading,
planning and writing are in ``catalog.importing``.

Between steps the uploaded file waits in the private storage under a random token, which only the session that
uploaded it knows; nothing of it reaches the database until the import itself runs.
"""

from __future__ import annotations

import secrets

from django import forms
from django.contrib import admin
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from marketplace.errors import ApplicationError

from .importing import (
    FIELDS,
    PREVIEW_ROWS,
    CsvTable,
    ImportOptions,
    catalog_export_csv,
    catalog_import_dry_run,
    catalog_import_run,
    import_file_read,
    import_mapping_get,
    import_mapping_save,
    mapping_check,
)
from .storage import private_storage

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
SESSION_KEY = "catalog_imports"
# Imports a session keeps (their files and results); older ones are deleted as new ones start.
KEEP_IMPORTS = 3
TEMPLATES = "admin/catalog/contentitem/"


# --- forms ----------------------------------------------------------------------------------------------------------

class UploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy("Another platform's course export as it is: UTF-8 or GBK, up to 20 MB."))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 20 MB; split it into several files."))
        name = (upload.name or "").lower()
        if not name.endswith((".csv", ".txt", ".tsv")):
            raise forms.ValidationError(_("Upload a CSV file (ending in .csv)."))
        data = upload.read()
        try:
            table = import_file_read(data=data)
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc
        if not any(any(str(v).strip() for v in row.values()) for row in table.rows):
            raise forms.ValidationError(_("The file has a header row but no rows under it."))
        self.data_bytes = data
        return upload


class MappingForm(forms.Form):
    """One select per source column, prefilled from the saved or suggested mapping, and the two options."""

    create_missing_categories = forms.BooleanField(
        label=gettext_lazy("Create categories the storefront does not have yet"), required=False,
        help_text=gettext_lazy("Otherwise a row naming an unknown category is listed as an error."))
    update_existing = forms.BooleanField(
        label=gettext_lazy("Update items that already exist"), required=False,
        help_text=gettext_lazy("Matched by the previous platform's ID, then by slug. Otherwise such rows are "
                               "listed as duplicates."))

    def __init__(self, *args, table: CsvTable, initial_mapping: dict[str, str], may_update: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.headers = table.headers
        choices = [("", _("— ignore this column —")), *((name, label) for name, label in FIELDS.items())]
        self.column_fields = []
        for index, header in enumerate(table.headers):
            name = f"column_{index}"
            examples = [str(row.get(header, "")).strip() for row in table.rows[:20]]
            example = next((e for e in examples if e), "")
            self.fields[name] = forms.ChoiceField(
                label=header, choices=choices, required=False, initial=initial_mapping.get(header, ""),
                help_text=example[:80])
            self.column_fields.append(name)
        if not may_update:
            self.fields["update_existing"].disabled = True

    def columns(self):
        return [self[name] for name in self.column_fields]

    def options(self):
        return [self["create_missing_categories"], self["update_existing"]]

    def clean(self):
        cleaned = super().clean()
        mapping = self.mapping()
        try:
            mapping_check(headers=self.headers, mapping=mapping)
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc
        return cleaned

    def mapping(self) -> dict[str, str]:
        return {header: self.cleaned_data.get(f"column_{i}") or "" for i, header in enumerate(self.headers)}


# --- state kept between steps ---------------------------------------------------------------------------------------

def _imports(request) -> dict:
    return request.session.setdefault(SESSION_KEY, {})


def _state(request, token: str) -> dict:
    state = _imports(request).get(token)
    tenant = getattr(request, "tenant", None)
    if state is None or tenant is None or state.get("tenant") != tenant.pk:
        raise Http404(_("This import is not known here; upload the file again."))
    return state


def _save_state(request, token: str, state: dict) -> None:
    _imports(request)[token] = state
    request.session.modified = True


def _delete_files(state: dict) -> None:
    for key in ("file", "errors_file"):
        if state.get(key):
            private_storage().delete(state[key])


def _start(request, data: bytes, filename: str) -> str:
    imports = _imports(request)
    for old in sorted(imports, key=lambda t: imports[t].get("started", ""))[: max(0, len(imports) - KEEP_IMPORTS + 1)]:
        _delete_files(imports.pop(old))
    token = secrets.token_urlsafe(16)
    name = private_storage().save(f"imports/{request.tenant.pk}/{token}.csv", ContentFile(data))
    _save_state(request, token, {"tenant": request.tenant.pk, "file": name, "filename": filename[:200],
                                 "started": timezone.now().isoformat()})
    return token


def _table(state: dict) -> CsvTable:
    with private_storage().open(state["file"], "rb") as handle:
        return import_file_read(data=handle.read())


def _progress_key(request, token: str) -> str:
    return f"catalog-import-progress:{request.tenant.pk}:{token}"


# --- views ----------------------------------------------------------------------------------------------------------

class ImportExportViews:
    """The import steps and the export, bound to the content items' ModelAdmin for permissions and querysets."""

    def __init__(self, model_admin: admin.ModelAdmin):
        self.model_admin = model_admin
        self.opts = model_admin.model._meta

    def _context(self, request, title: str, **extra) -> dict:
        return {**self.model_admin.admin_site.each_context(request), "opts": self.opts, "title": title,
                "changelist_url": reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"),
                "upload_url": reverse("admin:catalog_contentitem_import"), **extra}

    def _require_add(self, request) -> None:
        if not self.model_admin.has_import_permission(request):
            raise PermissionDenied

    def _may_update(self, request) -> bool:
        return self.model_admin.has_change_permission(request)

    def upload(self, request):
        """Step 1: upload the file."""
        self._require_add(request)
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            token = _start(request, form.data_bytes, form.cleaned_data["file"].name)
            return HttpResponseRedirect(reverse("admin:catalog_contentitem_import_mapping", args=[token]))
        return TemplateResponse(request, TEMPLATES + "import_upload.html", self._context(
            request, _("Import content items from CSV"), form=form, max_mb=MAX_UPLOAD_BYTES // (1024 * 1024)))

    def mapping(self, request, token: str):
        """Step 2: map the file's columns to our fields and choose the options."""
        self._require_add(request)
        state = _state(request, token)
        if "result" in state:
            return HttpResponseRedirect(reverse("admin:catalog_contentitem_import_result", args=[token]))
        table = _table(state)
        choice = import_mapping_get(tenant=request.tenant, headers=table.headers)
        columns = state.get("mapping") or choice.columns
        options = ImportOptions.of(state.get("options") or choice.options)
        may_update = self._may_update(request)
        form = MappingForm(request.POST or None, table=table, initial_mapping=columns, may_update=may_update,
                           initial=options.as_dict())
        if request.method == "POST" and form.is_valid():
            options = ImportOptions(create_missing_categories=form.cleaned_data["create_missing_categories"],
                                    update_existing=may_update and form.cleaned_data["update_existing"])
            import_mapping_save(tenant=request.tenant, headers=table.headers, columns=form.mapping(),
                                options=options, name=state["filename"])
            state.update(mapping=form.mapping(), options=options.as_dict())
            _save_state(request, token, state)
            return HttpResponseRedirect(reverse("admin:catalog_contentitem_import_preview", args=[token]))
        return TemplateResponse(request, TEMPLATES + "import_mapping.html", self._context(
            request, _("Map the columns of %(file)s") % {"file": state["filename"]}, form=form, token=token,
            saved=choice.saved, rows=len(table.rows)))

    def preview(self, request, token: str):
        """Step 3: the dry run (GET), and the import itself (POST)."""
        self._require_add(request)
        state = _state(request, token)
        if "result" in state:
            return HttpResponseRedirect(reverse("admin:catalog_contentitem_import_result", args=[token]))
        if "mapping" not in state:
            return HttpResponseRedirect(reverse("admin:catalog_contentitem_import_mapping", args=[token]))
        table = _table(state)
        options = ImportOptions.of(state["options"])
        options.update_existing = options.update_existing and self._may_update(request)
        kwargs = {"tenant": request.tenant, "rows": table.rows, "mapping": state["mapping"], "options": options,
                  "editable_items": self.model_admin.get_queryset(request), "headers": table.headers}
        if request.method == "POST":
            key = _progress_key(request, token)

            def progress(done: int, total: int) -> None:
                cache.set(key, {"done": done, "total": total}, timeout=3600)

            report = catalog_import_run(actor=request.user, progress=progress, **kwargs)
            errors_file = ""
            if report.errors:
                errors_file = private_storage().save(f"imports/{request.tenant.pk}/{token}-errors.csv",
                                                     ContentFile(("\ufeff" + report.bad_rows_csv()).encode()))
            private_storage().delete(state["file"])
            state.update(file="", errors_file=errors_file, result={
                "totals": report.totals, "new_categories": report.new_categories[:PREVIEW_ROWS],
                "errors": [{"number": r.number, "title": r.title, "reasons": r.reasons}
                           for r in report.errors[:PREVIEW_ROWS]]})
            _save_state(request, token, state)
            return HttpResponseRedirect(reverse("admin:catalog_contentitem_import_result", args=[token]))
        report = catalog_import_dry_run(**kwargs)
        return TemplateResponse(request, TEMPLATES + "import_preview.html", self._context(
            request, _("Check the import of %(file)s") % {"file": state["filename"]}, token=token,
            totals=report.totals, rows=report.rows[:PREVIEW_ROWS], errors=report.errors[:PREVIEW_ROWS],
            more_errors=max(0, len(report.errors) - PREVIEW_ROWS), new_categories=report.new_categories,
            preview_limit=PREVIEW_ROWS, good=report.totals["create"] + report.totals["update"],
            progress_url=reverse("admin:catalog_contentitem_import_progress", args=[token])))

    def result(self, request, token: str):
        """Step 4: what was imported, and the bad rows with their reasons."""
        self._require_add(request)
        state = _state(request, token)
        if "result" not in state:
            return HttpResponseRedirect(reverse("admin:catalog_contentitem_import_preview", args=[token]))
        result = state["result"]
        return TemplateResponse(request, TEMPLATES + "import_result.html", self._context(
            request, _("Import of %(file)s finished") % {"file": state["filename"]}, token=token,
            totals=result["totals"], errors=result["errors"], new_categories=result["new_categories"],
            more_errors=max(0, result["totals"]["error"] - len(result["errors"])),
            errors_url=reverse("admin:catalog_contentitem_import_errors", args=[token])
            if state.get("errors_file") else ""))

    def errors_csv(self, request, token: str):
        """The bad rows as a CSV file, as they were uploaded plus a column of reasons, to fix and upload again."""
        self._require_add(request)
        state = _state(request, token)
        if not state.get("errors_file"):
            raise Http404(_("This import had no bad rows."))
        with private_storage().open(state["errors_file"], "rb") as handle:
            content = handle.read()
        response = HttpResponse(content, content_type="text/csv; charset=utf-8")
        stem = state["filename"].rsplit(".", 1)[0] or "import"
        response["Content-Disposition"] = f'attachment; filename="{_ascii(stem)}-errors.csv"'
        return response

    def progress(self, request, token: str):
        """How far the running import is, for the progress bar the preview page shows while it waits."""
        self._require_add(request)
        _state(request, token)
        return JsonResponse(cache.get(_progress_key(request, token)) or {"done": 0, "total": 0})

    def export(self, request):
        """Every item this admin shows (a creator: their own), as CSV."""
        if not self.model_admin.has_view_permission(request):
            raise PermissionDenied
        return _csv_response(self.model_admin.get_queryset(request), request)


def _ascii(name: str) -> str:
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in name)
    return cleaned.strip("_") or "import"


def _csv_response(items, request) -> HttpResponse:
    # The byte-order mark makes Excel read the file as UTF-8 (and the importer skips it).
    response = HttpResponse("\ufeff" + catalog_export_csv(items=items), content_type="text/csv; charset=utf-8")
    tenant = getattr(request, "tenant", None)
    stem = _ascii(tenant.slug) if tenant is not None else "zhiku"
    response["Content-Disposition"] = (
        f'attachment; filename="{stem}-items-{timezone.now().strftime("%Y%m%d-%H%M")}.csv"')
    return response


def import_export_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    """The import and export routes, each behind the admin site's login, role and MFA checks."""
    views = ImportExportViews(model_admin)
    wrap = model_admin.admin_site.admin_view
    return [
        path("import/", wrap(views.upload), name="catalog_contentitem_import"),
        path("import/<str:token>/mapping/", wrap(views.mapping), name="catalog_contentitem_import_mapping"),
        path("import/<str:token>/preview/", wrap(views.preview), name="catalog_contentitem_import_preview"),
        path("import/<str:token>/result/", wrap(views.result), name="catalog_contentitem_import_result"),
        path("import/<str:token>/errors.csv", wrap(views.errors_csv), name="catalog_contentitem_import_errors"),
        path("import/<str:token>/progress/", wrap(views.progress), name="catalog_contentitem_import_progress"),
        path("export/", wrap(views.export), name="catalog_contentitem_export"),
    ]


@admin.action(description=gettext_lazy("Export selected items as CSV"), permissions=["view"])
def export_selected_as_csv(modeladmin, request, queryset):
    """Admin action: the selected items (already limited to what this admin shows) as CSV."""
    if not modeladmin.has_view_permission(request):
        raise PermissionDenied
    return _csv_response(queryset, request)
