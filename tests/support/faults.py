"""The fault scenarios' results (tests/system/test_faults_*.py): each scenario records its counts with
`record`; tests/system/conftest.py's session fixture `fault_table` prints every row in one table at the end.
"""

from __future__ import annotations

from collections import Counter

from support.mqtt import Subscriber

RESULTS: list[tuple] = []  # (scenario, committed, delivered, twice, lost, note): printed at the end


def record(scenario: str, committed: set[str], received: list[str], note: str = "") -> int:
    counts = Counter(received)
    lost = len(committed - set(counts))
    twice = sum(1 for n in counts.values() if n > 1)
    RESULTS.append((scenario, len(committed), len(set(counts) & committed), twice, lost, note))
    print(f"\n| {scenario} | {len(committed)} | {len(set(counts) & committed)} | {twice} | {lost} | {note} |")
    return lost


def received(subscriber: Subscriber) -> list[str]:
    return [e["event_id"] for e in subscriber.events()]
