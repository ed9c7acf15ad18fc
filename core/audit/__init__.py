"""The audit log: every change, recorded in the transaction that makes it; append-only and tamper-evident.

- :func:`record` — add an event to the caller's transaction (plugins and core alike).
- :mod:`~core.audit.sealing` — the sealer chains committed events with HMACs, one writer per municipality.
- :func:`verify` — detect an edited, deleted, reordered or inserted entry and name the first.
- :func:`export_events`, the admin API (:mod:`core.audit.routes`, mounted by the app), retention and purge.

See ``docs/audit.md``.
"""

from core.audit.export import ExportedEvent, count_events, export_events
from core.audit.keys import AuditKeys, bind_keys
from core.audit.models import AuditChainEntry, AuditEvent, AuditSettingsRow
from core.audit.recording import MAX_PAYLOAD_BYTES, actor_for, flush_events, record
from core.audit.retention import PurgeResult, get_retention, purge, set_retention
from core.audit.sealing import Sealer, seal
from core.audit.verification import AuditLogTampered, Problem, Report, verify

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "AuditChainEntry",
    "AuditEvent",
    "AuditKeys",
    "AuditLogTampered",
    "AuditSettingsRow",
    "ExportedEvent",
    "Problem",
    "PurgeResult",
    "Report",
    "Sealer",
    "actor_for",
    "bind_keys",
    "count_events",
    "export_events",
    "flush_events",
    "get_retention",
    "purge",
    "record",
    "seal",
    "set_retention",
    "verify",
]
