"""Background jobs on dramatiq, always bound to the municipality they were queued for.

Plugins do not create dramatiq actors themselves (an actor binds to whatever broker is global when it is
decorated). They mark plain async functions with :func:`job` and return them from ``register_actors``; the core
turns each into an actor named ``<plugin>.<function>`` (``core.<function>`` for the core's own, listed in
``core.defaults.CORE_JOB_MODULES``) on the broker chosen by ``TSUNAGU_BROKER_URL``:

- ``redis://…`` or ``amqp://…`` for a shared deployment (``tsunagu worker`` processes consume),
- ``embedded://`` (default): an in-memory broker whose worker threads run inside the serving process.

Jobs are queued through the outbox (:func:`core.outbox.send_later`), in the transaction of the change that caused
them. A job function receives a :class:`JobContext` (platform, municipality, a tenant session, the message key)
and the keyword arguments it was queued with. A plugin's job runs only while the plugin is still enabled for that
municipality. Delivery is at least once: :meth:`JobContext.once` makes an effect happen once.
See ``docs/jobs.md``.
"""

from core.jobs._context import JobContext, JobFunction, JobOptions, current_context, job, job_options
from core.jobs._runner import JobRunner, check_broker, create_broker
from core.jobs.models import JobRun, PeriodicClaim
from core.jobs.periodic import Periodic, PeriodicScheduler
from core.jobs.services import JobServices

__all__ = [
    "JobContext",
    "JobFunction",
    "JobOptions",
    "JobRun",
    "JobRunner",
    "JobServices",
    "Periodic",
    "PeriodicClaim",
    "PeriodicScheduler",
    "check_broker",
    "create_broker",
    "current_context",
    "job",
    "job_options",
]
