from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from marketplace.errors import ApplicationError
from marketplace.money import CURRENCY_EXPONENTS

from .models import Category, ContentItem, Lesson, Level, Review

SORT_CHOICES = [
    ("", _("Best match / newest")),
    ("newest", _("Newest")),
    ("popular", _("Most popular")),
    ("rating", _("Highest rated")),
    ("price_low", _("Price: low to high")),
    ("price_high", _("Price: high to low")),
]


class BrowseForm(forms.Form):
    """The browse page's search box, filters and sort. Prices are typed in major units (yuan, dollars)."""

    q = forms.CharField(label=_("Search"), required=False, max_length=200)
    category = forms.ModelChoiceField(label=_("Category"), queryset=Category.objects.none(), required=False,
                                      to_field_name="slug", empty_label=_("All categories"))
    kind = forms.ChoiceField(label=_("Type"), required=False,
                             choices=[("", _("All types")), *ContentItem.Kind.choices])
    level = forms.ChoiceField(label=_("Level"), required=False, choices=[("", _("All levels")), *Level.choices])
    language = forms.ChoiceField(label=_("Language of the content"), required=False,
                                 choices=[("", _("All languages")), *settings.LANGUAGES])
    price_min = forms.DecimalField(label=_("Lowest price"), required=False, min_value=0, max_digits=12,
                                   decimal_places=2)
    price_max = forms.DecimalField(label=_("Highest price"), required=False, min_value=0, max_digits=12,
                                   decimal_places=2)
    free = forms.BooleanField(label=_("Free only"), required=False)
    sort = forms.ChoiceField(label=_("Sort by"), required=False, choices=SORT_CHOICES)

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.exponent = CURRENCY_EXPONENTS.get(currency, 2)
        self.fields["category"].queryset = Category.objects.all()
        for name in ("price_min", "price_max"):  # as many decimals as the currency has: none in yen, three in dinars
            field = self.fields[name]
            self.fields[name] = forms.DecimalField(label=field.label, required=False, min_value=0, max_digits=12,
                                                   decimal_places=self.exponent)

    def _minor(self, name):
        value = self.cleaned_data.get(name)
        return None if value is None else int(value * (Decimal(10) ** self.exponent))

    def clean_price_min(self):
        return self._minor("price_min")

    def clean_price_max(self):
        return self._minor("price_max")

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("price_min"), cleaned.get("price_max")
        if low is not None and high is not None and low > high:
            self.add_error("price_max", _("The highest price must not be below the lowest."))
        return cleaned


class ReviewForm(forms.ModelForm):
    rating = forms.TypedChoiceField(label=_("Your rating"), coerce=int, widget=forms.RadioSelect,
                                    choices=[(n, "★" * n) for n in range(5, 0, -1)])

    class Meta:
        model = Review
        fields = ["rating", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 4})}


# The progress columns are PositiveIntegerFields: PostgreSQL stores at most 2**31 - 1 in them.
POSITION_MAX = 2**31 - 1


class ProgressForm(forms.Form):
    """What the player (or the "mark complete" button) reports: the lesson, the media position and completion.

    A position that is not a finite number is refused; a finite one is kept between 0 and the length of the lesson
    (or of the item) when that is known, else within what the column holds, because players report positions a
    little past the end and a clamped position still resumes correctly.
    """

    lesson = forms.ModelChoiceField(queryset=Lesson.objects.none(), required=False,
                                    error_messages={"invalid_choice": _("That lesson is not part of this item.")})
    position = forms.FloatField(required=False,
                                error_messages={"invalid": _("The position must be a number of seconds.")})
    # The player sends "1" or "0", the button "1": a checkbox field would read "0" as ticked.
    completed = forms.CharField(required=False)

    def __init__(self, *args, item: ContentItem, **kwargs):
        super().__init__(*args, **kwargs)
        self.item = item
        self.fields["lesson"].queryset = item.lessons.all()

    def clean_completed(self) -> bool:
        return self.cleaned_data["completed"].lower() in ("1", "true", "on")

    def clean(self):
        cleaned = super().clean()
        if "lesson" in cleaned and "position" in cleaned:
            lesson = cleaned["lesson"]
            length = lesson.duration_seconds if lesson is not None else self.item.duration_minutes * 60
            position = int(cleaned["position"] or 0)  # finite here: FloatField refuses inf and nan
            cleaned["position"] = min(max(position, 0), length or POSITION_MAX)
        return cleaned

    def first_error(self) -> ApplicationError:
        """The first invalid field as an ApplicationError, ``invalid_<field>``, for the JSON reply or error page."""
        field, errors = next(iter(self.errors.items()))
        return ApplicationError(errors[0], code=f"invalid_{field}", extra={"field": field})
