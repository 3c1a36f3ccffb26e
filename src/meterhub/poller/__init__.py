"""Polling meters: the schedule, health and backoff, quota-safe history backfill.

Poller           every configured meter on its own schedule, one event loop, one heap
PollerSettings   jitter, backoff cap, concurrency, recovery reach
Clock            real time, or scaled to follow a simulator
Sink             batched writes of polled data and health
BackfillJob      a resumable history range, persisted in the store (scope ``backfill``)
run_backfill     fetch a job window by window within the vendor's quotas
"""

from meterhub.poller.backfill import BACKFILL_SCOPE, BackfillJob, BackfillLedger, backfill_meter, run_backfill
from meterhub.poller.clock import Clock
from meterhub.poller.connectors import ConnectorClass, ConnectorFactory, history_chunk_s, history_rule
from meterhub.poller.plan import HistoryPlan, declared_plan, measured_plan
from meterhub.poller.scheduler import Poller, PollerSettings, PollerStats, PollOutcome, retry_delay_s
from meterhub.poller.sink import HealthNote, Sink, Stored

__all__ = [
    "BACKFILL_SCOPE",
    "BackfillJob",
    "BackfillLedger",
    "Clock",
    "ConnectorClass",
    "ConnectorFactory",
    "HealthNote",
    "HistoryPlan",
    "PollOutcome",
    "Poller",
    "PollerSettings",
    "PollerStats",
    "Sink",
    "Stored",
    "backfill_meter",
    "declared_plan",
    "history_chunk_s",
    "history_rule",
    "measured_plan",
    "retry_delay_s",
    "run_backfill",
]
