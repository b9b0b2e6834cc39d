"""The unit's durable outbox of events (see edge.unit.outbox.queue)."""

from edge.unit.outbox.queue import Outbox, OutboxError, restamped, salvage

__all__ = ["Outbox", "OutboxError", "restamped", "salvage"]
