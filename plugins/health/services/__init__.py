"""The health domain: no HTTP in here. Every function takes a session bound to one municipality.

- :mod:`._people` people and who acts for whom; :mod:`._tokens` QR tokens and short codes;
- :mod:`._events` sessions, registration, waitlist promotion; :mod:`._checkin` scans;
- :mod:`._measures` consents and measures; :mod:`._points` awards and redemptions;
- :mod:`._outputs` statistics, the open data event list, reminders.
"""

from plugins.health.services import _checkin as checkin
from plugins.health.services import _events as events
from plugins.health.services import _measures as measures
from plugins.health.services import _outputs as outputs
from plugins.health.services import _people as people
from plugins.health.services import _points as points
from plugins.health.services import _tokens as tokens
from plugins.health.services._context import HealthContext, context_for, fiscal_year

__all__ = [
    "HealthContext",
    "checkin",
    "context_for",
    "events",
    "fiscal_year",
    "measures",
    "outputs",
    "people",
    "points",
    "tokens",
]
