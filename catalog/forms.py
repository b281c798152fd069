from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from marketplace.money import CURRENCY_EXPONENTS

from .models import Category, ContentItem, Level, Review

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
    price_min = forms.DecimalField(label=_("Lowest price"), required=False, min_value=0, decimal_places=2)
    price_max = forms.DecimalField(label=_("Highest price"), required=False, min_value=0, decimal_places=2)
    free = forms.BooleanField(label=_("Free only"), required=False)
    sort = forms.ChoiceField(label=_("Sort by"), required=False, choices=SORT_CHOICES)

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.exponent = CURRENCY_EXPONENTS.get(currency, 2)
        self.fields["category"].queryset = Category.objects.all()

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
