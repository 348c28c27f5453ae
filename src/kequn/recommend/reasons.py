"""Why a product is recommended, in the user's language, from the model or fallback behind it."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

# Fallbacks name themselves; trained models are item_knn, als, popularity or
# hybrid_<weights> (the weights of item-kNN, ALS and popularity, e.g. hybrid_1_0_1).
FALLBACKS = {
    "popular_in_city": gettext_noop("Popular in their city"),
    "popular_in_segment": gettext_noop("Popular in their segment"),
    "popular_global": gettext_noop("Popular"),
    "popularity": gettext_noop("Popular"),
}


def get_reason_label(source: str) -> str:
    """Return the reason a user reads for a recommendation's source, never the model's code."""
    source = source or ""
    if source in FALLBACKS:
        return _(FALLBACKS[source])
    if source == "item_knn":
        return _("Often bought with what they bought")
    if source == "als":
        return _("Bought by similar customers")
    if source.startswith("hybrid_"):
        weights = source.removeprefix("hybrid_").split("_")
        try:
            knn, als, _pop = (float(w) for w in weights)
        except ValueError:
            return _("Bought by similar customers")
        if knn and not als:
            return _("Often bought with what they bought, and popular")
        if als and not knn:
            return _("Bought by similar customers, and popular")
        return _("Bought by similar customers and with what they bought")
    return _("Recommended by the trained model")
