from django import forms
from django.utils.translation import gettext_lazy as _

from catalog.models import Category, LearningPath

from .models import LearnerPreference


class PreferenceForm(forms.Form):
    personalised = forms.BooleanField(label=_("Personalised recommendations"), required=False,
                                      help_text=LearnerPreference._meta.get_field("personalised").help_text)
    digest = forms.ChoiceField(label=_("Recommendation digest by email"), choices=LearnerPreference.Digest.choices)


class GoalForm(forms.Form):
    """A subject or an authored path, in one list: "c:<id>" or "p:<id>", empty to clear."""

    goal = forms.ChoiceField(label=_("Your goal"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        paths = [(f"p:{pk}", title) for pk, title in
                 LearningPath.objects.filter(is_published=True).values_list("pk", "title")]
        subjects = [(f"c:{pk}", name) for pk, name in Category.objects.values_list("pk", "name")]
        self.fields["goal"].choices = [("", _("No goal"))] + ([(_("Learning paths"), paths)] if paths else []) + (
            [(_("Subjects"), subjects)] if subjects else [])

    def goal_objects(self) -> dict:
        value = self.cleaned_data["goal"]
        if not value:
            return {}
        kind, pk = value.split(":")
        if kind == "p":
            return {"path": LearningPath.objects.get(pk=int(pk))}
        return {"category": Category.objects.get(pk=int(pk))}
