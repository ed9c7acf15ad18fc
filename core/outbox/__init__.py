"""The transactional outbox: jobs and events written in the transaction that caused them, relayed afterwards.

- :func:`send_later` — queue a job for the session's municipality (idempotency key, ``not_before``).
- :func:`publish_event` — a cross-plugin event, delivered at least once to every enabled plugin's ``on_event``.
- :class:`~core.outbox.relay.Relay` — moves committed, due messages to the broker; runs in app and worker
  processes.
- :func:`~core.outbox.status.outbox_status` — what is pending, for ``tsunagu outbox status``.

See ``docs/jobs.md``.
"""

from core.outbox.models import OutboxMessage
from core.outbox.sending import DELIVER_EVENT, Event, publish_event, send_later

__all__ = ["DELIVER_EVENT", "Event", "OutboxMessage", "publish_event", "send_later"]
