"""The booking domain: no HTTP in here. Every function takes a session bound to one municipality.

- :mod:`._calendar` opening hours, closed days, slots (pure);
- :mod:`._opendata` reading 公共施設一覧 / LinkData files, writing the 自治体標準 CSV (pure);
- :mod:`._facilities` facilities and units, imports;
- :mod:`._occupancy` the rows the database's no-double-booking guard works on;
- :mod:`._reservations` holds, blocks, transitions; :mod:`._availability`; :mod:`._waitlist`;
- :mod:`._lottery` applications and reproducible draws; :mod:`._ical` feeds; :mod:`._reminders`.
"""

from plugins.booking.services import (
    _availability as availability,
)
from plugins.booking.services import (
    _calendar as calendar,
)
from plugins.booking.services import (
    _facilities as facilities,
)
from plugins.booking.services import (
    _ical as ical,
)
from plugins.booking.services import (
    _lottery as lottery,
)
from plugins.booking.services import (
    _opendata as opendata,
)
from plugins.booking.services import (
    _reminders as reminders,
)
from plugins.booking.services import (
    _reservations as reservations,
)
from plugins.booking.services import (
    _waitlist as waitlist,
)
from plugins.booking.services._context import BookingContext, context_for
from plugins.booking.services._occupancy import SlotTaken

__all__ = [
    "BookingContext",
    "SlotTaken",
    "availability",
    "calendar",
    "context_for",
    "facilities",
    "ical",
    "lottery",
    "opendata",
    "reminders",
    "reservations",
    "waitlist",
]
