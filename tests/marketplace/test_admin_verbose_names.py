"""A Chinese storefront's admin names every app and model it shows in Chinese.

Whether it does depends on the translations, which come later; what the code owes them is a translatable name for
each: every app's and every model's (singular and plural) must be marked for translation, and every model must
declare its plural, since Django otherwise appends an English "s" to the translated singular ("租户s")."""

from django.apps import apps
from django.contrib import admin
from django.utils.functional import Promise

# allauth's TOTP devices: only the operator's admin lists them (a storefront's team holds no permission on them), and
# their model is not ours to name.
NOT_OURS = {"mfa.authenticator"}


def shown_models():
    """Every model the admin lists, and every model an inline shows within another's page, with the names the admin
    was given for it (an inline may name its rows itself)."""
    for model, model_admin in admin.site._registry.items():
        yield model, {}
        for inline in model_admin.inlines:
            yield inline.model, {attr: getattr(inline, attr) for attr in ("verbose_name", "verbose_name_plural")
                                 if getattr(inline, attr)}


def test_every_model_the_admin_shows_declares_translatable_names_singular_and_plural():
    untranslatable = []
    for model, given in shown_models():
        if model._meta.label_lower in NOT_OURS:
            continue
        # What the model's Meta says, before Django derives the rest.
        declared = {**model._meta.original_attrs, **given}
        for attr in ("verbose_name", "verbose_name_plural"):
            if not isinstance(declared.get(attr), Promise):
                untranslatable.append(f"{model._meta.label}.{attr}")
    assert untranslatable == []


def test_every_app_the_admin_shows_has_a_translatable_name():
    labels = {model._meta.app_label for model, _named in shown_models()}
    untranslatable = sorted(label for label in labels if not isinstance(apps.get_app_config(label).verbose_name,
                                                                        Promise))
    assert untranslatable == []


def test_a_deliverys_attempts_list_and_its_attempt_count_have_their_own_chinese_names():
    from django.utils import translation

    from distribution.models import Delivery, DeliveryAttempt

    with translation.override("zh-hans"):
        assert str(Delivery._meta.get_field("attempts").verbose_name) == "尝试次数"
        assert str(DeliveryAttempt._meta.verbose_name_plural) == "推送尝试记录"
