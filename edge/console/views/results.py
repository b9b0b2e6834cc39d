"""Traces kept in this process's memory for a while, so that their exports and notices need no second search.

Never written anywhere: a result holds FaceHashes. Each session keeps its newest few, each for a bounded
time; a session sees only its own (the key is a hash of the session's token, so the token is not kept here).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

SESSIONS_KEPT = 200  # beyond this many sessions with results, the longest unused one's are forgotten


@dataclass(frozen=True)
class Kept:
    number: int
    trace: object  # edge.tracer.trace.Trace
    case_id: str
    at: float  # time.monotonic() when it was made


def owner(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Results:
    def __init__(self, per_session: int, ttl_s: float):
        self.per_session, self.ttl_s = per_session, ttl_s
        self._by_owner: OrderedDict[str, OrderedDict[int, Kept]] = OrderedDict()
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def keep(self, token: str, trace, case_id: str) -> Kept:
        with self._lock:
            kept = Kept(next(self._numbers), trace, case_id, time.monotonic())
            mine = self._by_owner.setdefault(owner(token), OrderedDict())
            self._by_owner.move_to_end(owner(token))
            mine[kept.number] = kept
            while len(mine) > self.per_session:
                mine.popitem(last=False)
            while len(self._by_owner) > SESSIONS_KEPT:
                self._by_owner.popitem(last=False)
            return kept

    def get(self, token: str, number: int) -> Kept | None:
        with self._lock:
            mine = self._by_owner.get(owner(token), {})
            kept = mine.get(number)
            if kept is not None and time.monotonic() - kept.at > self.ttl_s:
                del mine[number]
                return None
            return kept

    def forget(self, token: str) -> None:
        """At logout: the session's results go with it."""
        with self._lock:
            self._by_owner.pop(owner(token), None)
