"""Prometheus metrics of this worker's share of the meters, on the hub's registry.

``meterhub_worker_meters_held{worker}``      meters this worker holds now
``meterhub_worker_holds{worker,meter}``      1 for each meter held (which meters, by name)
``meterhub_worker_share{worker}``            the share of the meters this worker aims at
``meterhub_workers_alive{worker}``           workers alive as the last renewal saw them
``meterhub_worker_lease_renewals_total{worker,outcome}``  renewals, ``ok`` or ``failed``

Read from the live :class:`~meterhub.poller.work.Tenure` at each scrape, so a meter given back
disappears from the answer at once.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from meterhub.metrics import REGISTRY
from meterhub.poller.work import tenures

__all__ = ["WorkCollector", "install"]


class WorkCollector(Collector):
    """Collects the work-share metrics of every tenure of this process."""

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families."""
        held = GaugeMetricFamily("meterhub_worker_meters_held", "Meters this worker holds", labels=["worker"])
        holds = GaugeMetricFamily(
            "meterhub_worker_holds", "1 for each meter this worker holds", labels=["worker", "meter"]
        )
        share = GaugeMetricFamily(
            "meterhub_worker_share", "Meters this worker aims to hold", labels=["worker"]
        )
        alive = GaugeMetricFamily(
            "meterhub_workers_alive", "Workers alive as the last lease renewal saw them", labels=["worker"]
        )
        renewals = CounterMetricFamily(
            "meterhub_worker_lease_renewals", "Lease renewals by outcome", labels=["worker", "outcome"]
        )
        for tenure in tenures():
            worker, state = tenure.worker_id, tenure.state
            held.add_metric([worker], len(state.held))
            for meter_id in sorted(state.held):
                holds.add_metric([worker, meter_id], 1)
            share.add_metric([worker], state.share)
            alive.add_metric([worker], state.workers)
            renewals.add_metric([worker, "ok"], state.renewals)
            renewals.add_metric([worker, "failed"], state.failed_renewals)
        yield from (held, holds, share, alive, renewals)


_INSTALLED: list[WorkCollector] = []


def install() -> None:
    """Register the collector on the hub's registry (once per process)."""
    if not _INSTALLED:
        collector = WorkCollector()
        REGISTRY.register(collector)
        _INSTALLED.append(collector)
