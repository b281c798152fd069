"""Django messages our storefronts show whose current wording Django's own zh_Hans catalog lacks (5.2 reworded them).

Marked here, never imported, so that ``makemessages`` keeps them in this project's catalog, which Django reads before
its own.
"""

from django.utils.translation import ngettext_lazy

REWORDED = [
    ngettext_lazy("This password is too short. It must contain at least %d character.",
                  "This password is too short. It must contain at least %d characters.", 8),
]
