"""The job queue on Dramatiq: Redis in production, an in-process worker when embedded.

`open_jobs(settings)` gives an object with the same `submit(name, payload, key=,
delay_s=)` and `register(name, handler)` as the in-process queue it replaced, so callers do
not know which one runs their jobs.
"""

from ivr.jobs.dead import DeadLetter, dead_letters, requeue_dead
from ivr.jobs.queue import DramatiqJobs, open_jobs, queue_for

__all__ = ["DeadLetter", "DramatiqJobs", "dead_letters", "open_jobs", "queue_for", "requeue_dead"]
