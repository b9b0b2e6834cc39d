"""A durable queue of events in SQLite (WAL): committed before they are sent, deleted after PUBACK.

Power can fail at any moment on a unit: an event is on disk before anyone tries to publish it, and
leaves the disk only when the broker has acknowledged it. On start, whatever is left is sent again,
oldest first, with its original id.

The disk itself can fail a unit too, and none of that may stop it or lose an event quietly:
- full: an event that cannot be committed is held in memory (bounded) and still sent, and written as
  soon as there is room; a delivered event that cannot be deleted is never sent again and is deleted
  when there is room;
- damaged: the file is moved aside (`<name>.damaged-<time>`), what can be read is carried over into a
  fresh file, and the loss is counted;
- deleted or replaced while running: a new file is made at the path with every waiting event in it.
`problem` says what is wrong right now and `faults` what went wrong before, for health.

Its pieces: `queue` (the Outbox: order, bounds and their policy, events held in memory while the disk is
full), `file` (opening the file; salvage and quarantine of a damaged or deleted one), `restamp` (events
stamped before the clock was synchronised) and `read_only` (what `status` and tests read of the file while
a daemon runs).
"""

from edge.unit.outbox.file import OutboxError, salvage
from edge.unit.outbox.queue import Outbox
from edge.unit.outbox.read_only import Summary, summary, waiting_ids
from edge.unit.outbox.restamp import restamped

__all__ = ["Outbox", "OutboxError", "Summary", "restamped", "salvage", "summary", "waiting_ids"]
