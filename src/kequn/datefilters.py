"""Filter forms whose box is the browser's own date or month picker (no script, CSP-safe)."""

from __future__ import annotations

from django import forms
from unfold.widgets import UnfoldAdminTextInputWidget


class DateSearchForm(forms.Form):
    """unfold's TextFilter form with a date picker; the value stays YYYY-MM-DD."""

    input_type = "date"

    def __init__(self, name: str, label: str, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields[name] = forms.CharField(
            label=label,
            required=False,
            widget=UnfoldAdminTextInputWidget(attrs={"type": self.input_type}),
        )


class MonthSearchForm(DateSearchForm):
    """The same with a month picker; the value stays YYYY-MM."""

    input_type = "month"
