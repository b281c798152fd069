"""The catalog in the tenant's admin: items with their creators, sections and lessons, the review workflow, and the
supporting lists (categories, tags, creators, bundles, learning paths, learners' reviews).

Creators see only the items they are credited on and edit them only while they are drafts; owners and staff see
every item of their storefront and hold the reviewer's permission (approve, reject with a reason, archive).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_value
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from accounts.models import Role, User
from accounts.selectors import membership_role
from marketplace.admin_site import TenantScopedAdmin, tenant_choices
from marketplace.errors import ApplicationError
from marketplace.forms import MoneyField
from marketplace.money import CURRENCY_EXPONENTS, format_money, major_units

from . import services
from .admin_import import export_selected_as_csv, import_export_urls
from .media import captions_response, media_response
from .models import (
    Bundle,
    Category,
    ContentItem,
    Creator,
    ItemCreator,
    LearningPath,
    Lesson,
    PathStep,
    Review,
    Section,
    Tag,
)
from .storage import private_storage
from .text import render_rich_text
from .widgets import PrivateFileWidget

Status = ContentItem.Status


def _is_creator(request) -> bool:
    tenant = getattr(request, "tenant", None)
    return tenant is not None and membership_role(user=request.user, tenant=tenant) == Role.CREATOR


def _creator_profile(request) -> Creator:
    """The signed-in creator's profile on this storefront, made on first use from their account: named as they
    call themselves, else a plain "Creator" the team or they rename, never after their email address (which would
    then be printed in every item's credits)."""
    from .privacy import creator_placeholder

    profile = Creator.objects.filter(user=request.user).first()
    if profile is None:
        name = (request.user.display_name or request.user.get_full_name()).strip()[:120]  # Creator.name's length
        if name:
            base = slugify(name, allow_unicode=True)[:100].strip("-") or "creator"
            slug, n = base, 1
            while Creator.objects.filter(slug=slug).exists():
                n += 1
                slug = f"{base}-{n}"
        else:
            name, slug = creator_placeholder(tenant=request.tenant)
        profile = Creator.objects.create(tenant=request.tenant, user=request.user, name=name, slug=slug)
    return profile


def money_input_help(currency: str) -> str:
    """How an amount of ``currency`` is typed: as it is shown, in the major unit, with an example."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    ninety_nine = 99 * 10 ** exponent
    example = {"currency": currency, "typed": major_units(ninety_nine, currency),
               "shown": format_money(ninety_nine, currency)}
    if exponent == 0:
        return _("In whole %(currency)s: %(typed)s is %(shown)s.") % example
    return _("In %(currency)s as prices are shown: %(typed)s is %(shown)s.") % example


class ShownReadOnlyMixin:
    """Fields that a person who may only view the row reads through a display method rather than as stored:
    ``shown_read_only`` maps each such field to its display, and each mixin adds its own."""

    def shown_read_only(self) -> dict[str, str]:
        return {}

    def _read_only(self, request, obj) -> bool:
        return obj is not None and not self.has_change_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not self._read_only(request, obj):
            return fieldsets
        shown = self.shown_read_only()

        def swap(field):
            if isinstance(field, list | tuple):
                return tuple(swap(f) for f in field)
            return shown.get(field, field)

        # Without declared fieldsets Django lists the read-only fields too, displays included: each once.
        return [(name, {**options, "fields": list(dict.fromkeys(swap(f) for f in options["fields"]))})
                for name, options in fieldsets]

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if self._read_only(request, obj):
            fields = [*fields, *self.shown_read_only().values()]
        return fields


class PriceAdminMixin(ShownReadOnlyMixin):
    """Prices are stored in minor units and typed in the storefront currency's major unit, as they are shown and as
    refunds, imports and the storefront's filters take them: the list shows them as money and the input says how to
    type them, both in the row's storefront's currency."""

    price_fields = ("price",)
    price_help_suffix = ""
    list_select_related = ["tenant"]

    @admin.display(description=_("price"), ordering="price")
    def price_display(self, obj):
        return format_money(obj.price, obj.tenant.currency)

    def shown_read_only(self) -> dict[str, str]:
        # Someone who may only view the row (a creator, once their item is in review) reads the price as money,
        # not as the stored minor units.
        return {**super().shown_read_only(), "price": "price_display"}

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        tenant = obj.tenant if obj is not None else request.tenant
        if tenant is not None:
            for name in self.price_fields:
                stored = form.base_fields.get(name)
                if stored is not None:
                    form.base_fields[name] = MoneyField(
                        currency=tenant.currency, label=stored.label, required=stored.required,
                        initial=stored.initial, disabled=stored.disabled, help_text=" ".join(
                            filter(None, [money_input_help(tenant.currency), str(self.price_help_suffix)])))
        return form


class TenantInlineMixin:
    """Inline rows belong to their parent's storefront (the one served, or on the platform host the one the operator
    is editing), and choose only among its rows."""

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        tenant = obj.tenant if obj is not None else request.tenant

        class TenantFormSet(formset):
            def add_fields(self, form, index):
                super().add_fields(form, index)
                tenant_choices(form, getattr(tenant, "pk", None))

            def save_new(self, form, commit=True):
                form.instance.tenant = tenant
                return super().save_new(form, commit)

        return TenantFormSet


def _private_file_url(file) -> str:
    """The admin's address of an item's or a lesson's private file (``ContentItemAdmin.private_file_view``)."""
    owner = file.instance
    if isinstance(owner, Lesson):
        return reverse("admin:catalog_contentitem_lesson_file", args=[owner.item_id, owner.pk, file.field.name])
    return reverse("admin:catalog_contentitem_file", args=[owner.pk, file.field.name])


class PrivateFilesMixin(ShownReadOnlyMixin):
    """Media and captions sit on the private storage, whose URLs are never served: their link on the item's page
    (the "Currently" line of the file input, or the file shown read-only on an item the person may only view) goes
    to the admin's own view of the file instead."""

    def shown_read_only(self) -> dict[str, str]:
        return {**super().shown_read_only(), "media": "media_file", "captions": "captions_file"}

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.FileField) and db_field.storage is private_storage():
            kwargs["widget"] = PrivateFileWidget(url_for=_private_file_url)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def _read_only(self, request, item) -> bool:
        # Lessons are edited on their item's page, and read-only there when the item is.
        return item is not None and not self.admin_site.get_model_admin(ContentItem).has_change_permission(
            request, item)

    @staticmethod
    def _file_link(file) -> str:
        return format_html('<a href="{}">{}</a>', _private_file_url(file), file.name) if file else "-"

    @admin.display(description=ContentItem._meta.get_field("media").verbose_name)
    def media_file(self, obj):
        return self._file_link(obj.media)

    @admin.display(description=ContentItem._meta.get_field("captions").verbose_name)
    def captions_file(self, obj):
        return self._file_link(obj.captions)


class ItemCreatorFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        total = sum(form.cleaned_data.get("share_bp") or 0 for form in self.forms
                    if form.cleaned_data and not form.cleaned_data.get("DELETE"))
        if total > 10000:
            raise forms.ValidationError(
                _("The creators' shares add up to %(total)s%%; together they can be at most 100%% of the creators' "
                  "part."), code="shares_over_whole", params={"total": f"{total / 100:g}"})


class ItemCreatorInline(TenantInlineMixin, admin.TabularInline):
    model = ItemCreator
    formset = ItemCreatorFormSet
    extra = 0
    fields = ["creator", "share_bp", "position"]


class SectionInline(TenantInlineMixin, admin.TabularInline):
    model = Section
    extra = 0
    fields = ["title", "position"]


class LessonInline(PrivateFilesMixin, TenantInlineMixin, admin.StackedInline):
    model = Lesson
    extra = 0
    fields = [("section", "kind", "is_preview", "position"), "title", "body", ("media", "duration_seconds"),
              ("captions", "captions_language"), "transcript"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "section":
            item_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = Section.objects.filter(item_id=item_id) if item_id else Section.objects.none()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ContentItemForm(forms.ModelForm):
    class Meta:
        model = ContentItem
        # The admin adds the fields when it builds the form for a request, inside the tenant's scope; listing them
        # here would read the scoped choices when the module is imported.
        fields: list[str] = []

    def clean(self):
        cleaned = super().clean()
        slug = cleaned.get("slug")
        taken = ContentItem.objects.filter(slug=slug).exclude(pk=self.instance.pk)
        if self.instance.tenant_id is not None:  # the operator's scope holds every storefront's items
            taken = taken.filter(tenant_id=self.instance.tenant_id)
        if slug and taken.exists():
            self.add_error("slug", _("Another item on this storefront already uses this slug."))
        return cleaned


@admin.register(ContentItem)
class ContentItemAdmin(PrivateFilesMixin, PriceAdminMixin, TenantScopedAdmin):
    form = ContentItemForm
    list_display = ["title", "kind", "status", "version", "price_display", "language", "level", "updated_at"]
    list_filter = ["status", "kind", "level", "language", "is_featured", "categories"]
    search_fields = ["title", "subtitle", "external_id"]
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["categories", "tags", "prerequisites"]
    readonly_fields = ["status", "version", "published_at", "review_note", "decision_history"]
    actions = [export_selected_as_csv]
    change_form_template = "admin/catalog/contentitem/change_form.html"
    change_list_template = "admin/catalog/contentitem/change_list.html"
    fieldsets = [
        (None, {"fields": ["kind", "title", "subtitle", "slug", "language", "level", "price", "is_featured"]}),
        (_("Description"), {"fields": ["description", "cover", "cover_alt", "duration_minutes"]}),
        (_("Content"), {"fields": ["body", "media", ("captions", "captions_language"), "transcript"],
                        "description": _("Articles, lectures and e-books; a course's content is in its lessons.")}),
        (_("Live session"), {"fields": ["starts_at", "join_url"], "classes": ["collapse"]}),
        (_("Organisation"), {"fields": ["categories", "tags", "prerequisites", "external_id"]}),
        (_("Publication"), {"fields": ["status", "version", "published_at", "review_note", "decision_history"]}),
    ]
    inlines = [ItemCreatorInline, SectionInline, LessonInline]
    price_help_suffix = _("0 makes the item free.")

    def get_queryset(self, request):
        items = super().get_queryset(request)
        if _is_creator(request):
            items = items.filter(item_creators__creator__user=request.user).distinct()
        return items

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if _is_creator(request) and "prerequisites" in form.base_fields:
            # A creator picks prerequisites among what is on sale and their own items, never another creator's
            # unpublished drafts (their titles are not theirs to see); what the team already set stays listed.
            visible = Q(status=Status.PUBLISHED) | Q(item_creators__creator__user=request.user)
            if obj is not None:
                visible |= Q(pk__in=obj.prerequisites.values("pk"))
            form.base_fields["prerequisites"].queryset = ContentItem.objects.filter(visible).distinct()
        return form

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if request.tenant is not None:
            initial.setdefault("language", request.tenant.default_language)
        return initial

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        if obj is not None and _is_creator(request):
            return obj.status == Status.DRAFT
        # Saving a published item publishes it (``save_related``): that is a reviewer's to do.
        return obj is None or obj.status != Status.PUBLISHED or self.can_review(request)

    def has_import_permission(self, request) -> bool:
        # Imports create many uncredited drafts at once: a storefront-wide operation for owners and staff.
        return self.has_add_permission(request) and not _is_creator(request)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "has_import_permission": self.has_import_permission(request)}
        return super().changelist_view(request, extra_context)

    def has_delete_permission(self, request, obj=None):
        # Published work is archived, never deleted: orders, versions and the publication record point at it.
        if obj is not None and obj.version > 0:
            return False
        return super().has_delete_permission(request, obj) and not _is_creator(request)

    def get_inline_instances(self, request, obj=None):
        inlines = super().get_inline_instances(request, obj)
        if _is_creator(request):
            # Revenue shares are the storefront's decision; creators are credited automatically.
            inlines = [i for i in inlines if not isinstance(i, ItemCreatorInline)]
        if obj is None:
            # Lessons pick one of the item's sections, which exist only once the item does.
            inlines = [i for i in inlines if not isinstance(i, LessonInline)]
        return inlines

    @admin.display(description=_("history"))
    def decision_history(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        rows = obj.decisions.select_related("actor")[:10]
        return format_html_join(
            "", "<div>{} · {} · {} {}</div>",
            # In the storefront's time zone and the language's format, as the page's other times are.
            ((display_for_value(d.created_at, "-"), d.get_outcome_display(),
              d.actor.email if d.actor else "-", f"— {d.reason}" if d.reason else "") for d in rows),
        ) or "-"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        services.item_refresh_derived(item=obj, save=False)
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        if formset.model is Lesson:
            for lesson_form in formset.forms:
                if lesson_form.has_changed():
                    services.lesson_refresh_derived(lesson=lesson_form.instance)
        super().save_formset(request, form, formset, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        item = form.instance
        if _is_creator(request) and not item.item_creators.filter(creator__user=request.user).exists():
            ItemCreator.objects.create(tenant=request.tenant, item=item, creator=_creator_profile(request),
                                       share_bp=0)
        services.item_refresh_derived(item=item)
        if change and item.status == Status.PUBLISHED:
            # In the admin's transaction: the edit and its version commit together, or neither does.
            version = services.item_publish_changes(item=item, actor=request.user)
            if version is not None:
                self.message_user(request, _("Your changes are live: published as version %(number)s.")
                                  % {"number": version.number}, messages.SUCCESS)

    # --- the workflow buttons and the private files -----------------------------------------------------------------

    def get_urls(self):
        urls = [
            # The lesson's address first: the item's ``<path:object_id>`` would take "7/lessons/3" too.
            path("<path:object_id>/lessons/<int:lesson_id>/file/<str:field>/",
                 self.admin_site.admin_view(self.private_file_view), name="catalog_contentitem_lesson_file"),
            path("<path:object_id>/file/<str:field>/", self.admin_site.admin_view(self.private_file_view),
                 name="catalog_contentitem_file"),
            path("<path:object_id>/workflow/<str:action>/", self.admin_site.admin_view(self.workflow_view),
                 name="catalog_contentitem_workflow"),
            *import_export_urls(self),
        ]
        return urls + super().get_urls()

    def can_review(self, request) -> bool:
        return request.user.has_perm("catalog.review_contentitem")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_review"] = self.can_review(request)
        context["can_submit"] = obj is not None and obj.status == Status.DRAFT and self.has_change_permission(
            request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def private_file_view(self, request, object_id, field, lesson_id=None):
        """An item's or one of its lessons' media or captions, to whoever may see the item in this admin (its
        storefront's team, a creator credited on it, the operator), served as the storefront serves them to
        learners. The item is looked up in the admin's own scope, so another storefront's is a 404."""
        item = self.get_object(request, object_id)  # a 404 for an id this admin cannot see (MissingObjectIs404)
        if not self.has_view_or_change_permission(request, item):
            raise PermissionDenied
        owner = item if lesson_id is None else get_object_or_404(Lesson, pk=lesson_id, item=item)
        if field not in ("media", "captions") or not getattr(owner, field):
            raise Http404("No such file.")
        name = getattr(owner, field).name
        return captions_response(name) if field == "captions" else media_response(request, name)

    def workflow_view(self, request, object_id, action):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        item = self.get_object(request, object_id)
        reviewer_actions = {
            "approve": lambda: services.item_approve(item=item, actor=request.user),
            "reject": lambda: services.item_reject(item=item, actor=request.user,
                                                   reason=request.POST.get("reason", "")),
            "archive": lambda: services.item_archive(item=item, actor=request.user),
            "restore": lambda: services.item_restore(item=item, actor=request.user),
        }
        done = {
            "submit": _("Submitted for review."), "approve": _("Published."),
            "reject": _("Sent back to draft with your reason."), "archive": _("Archived."),
            "restore": _("Back on sale, as a new version."),
        }
        if action == "submit" and self.has_change_permission(request, item):
            run = lambda: services.item_submit(item=item, actor=request.user)  # noqa: E731
        elif action in reviewer_actions and self.can_review(request):
            run = reviewer_actions[action]
        else:
            return HttpResponseRedirect(reverse("admin:catalog_contentitem_change", args=[item.pk]))
        try:
            run()
            self.message_user(request, done[action], messages.SUCCESS)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        return HttpResponseRedirect(reverse("admin:catalog_contentitem_change", args=[item.pk]))


class ListedNameForm(forms.ModelForm):
    """Category and tag names: the CSV export lists an item's names separated by "|", so a name cannot hold one."""

    def clean_name(self):
        name = self.cleaned_data["name"]
        if "|" in name:
            raise forms.ValidationError(_("A name cannot contain “|”: the CSV export separates names with it."),
                                        code="separator_in_name")
        return name


class RenameRefreshesItemsMixin:
    """Items keep the names of their categories, tags and creators in their search text."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "name" in form.changed_data:
            services.catalog_name_changed(obj=obj)


@admin.register(Category)
class CategoryAdmin(RenameRefreshesItemsMixin, TenantScopedAdmin):
    form = ListedNameForm
    list_display = ["name", "slug", "position"]
    list_editable = ["position"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]


@admin.register(Tag)
class TagAdmin(RenameRefreshesItemsMixin, TenantScopedAdmin):
    form = ListedNameForm
    list_display = ["name"]
    search_fields = ["name"]


@admin.register(Creator)
class CreatorAdmin(RenameRefreshesItemsMixin, TenantScopedAdmin):
    """The team edits every creator profile; a creator edits their own (the name their work is credited to, their
    biography and photo) and reads their colleagues'."""

    list_display = ["name", "headline", "user"]
    search_fields = ["name", "headline"]
    prepopulated_fields = {"slug": ["name"]}

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or not _is_creator(request) or obj.user_id == request.user.pk

    # Creators read their colleagues' public profiles, not which accounts (emails) are behind them.
    def get_list_display(self, request):
        columns = super().get_list_display(request)
        return [c for c in columns if c != "user"] if _is_creator(request) else columns

    def get_exclude(self, request, obj=None):
        return ["user"] if _is_creator(request) else super().get_exclude(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # The person behind a creator profile is on this storefront's team (invite them as a creator first);
        # accounts are platform-wide, so anything wider would list and link other storefronts' people.
        if db_field.name == "user" and request.tenant is not None:
            kwargs["queryset"] = User.objects.filter(
                memberships__tenant=request.tenant,
                memberships__role__in=[Role.OWNER, Role.STAFF, Role.CREATOR]).distinct().order_by("email")
            kwargs.setdefault("help_text", _("Someone on this storefront's team; invite them as a creator first."))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Bundle)
class BundleAdmin(PriceAdminMixin, TenantScopedAdmin):
    list_display = ["title", "price_display", "is_published"]
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["items"]

    def save_model(self, request, obj, form, change):
        obj.description_html = render_rich_text(obj.description)
        super().save_model(request, obj, form, change)
        services.catalog_changed(obj.tenant_id)

    def save_related(self, request, form, formsets, change):
        from payments.services import bundle_items_removed

        before = set(form.instance.items.values_list("pk", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        removed = before - set(form.instance.items.values_list("pk", flat=True))
        if removed:  # what buyers paid for stays theirs
            bundle_items_removed(bundle=form.instance, item_ids=removed, actor=request.user)


class PathStepInline(TenantInlineMixin, admin.TabularInline):
    model = PathStep
    extra = 1
    fields = ["item", "position", "note"]


@admin.register(LearningPath)
class LearningPathAdmin(TenantScopedAdmin):
    list_display = ["title", "is_published"]
    prepopulated_fields = {"slug": ["title"]}
    inlines = [PathStepInline]

    def save_model(self, request, obj, form, change):
        obj.description_html = render_rich_text(obj.description)
        super().save_model(request, obj, form, change)


@admin.register(Review)
class ReviewAdmin(TenantScopedAdmin):
    """Learners' reviews: the team reads them and removes abusive ones; they cannot write or edit them."""

    list_display = ["item", "user", "rating", "updated_at"]
    list_filter = ["rating"]
    search_fields = ["item__title", "body"]
    readonly_fields = ["item", "user", "rating", "body"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        services.review_delete(review=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for review in queryset:
            services.review_delete(review=review, actor=request.user)
