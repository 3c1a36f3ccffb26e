"""The simulated household: determinism, exact registers, phases, resets, replay, clock."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tests.waiting import wait_until

from meterhub.vendors import physics
from meterhub.vendors.physics import Household, SimClock, SiteConfig

DATASETS = Path(__file__).parents[1] / "fixtures" / "datasets"
UCI_TXT = DATASETS / "uci_hpc_subset_2007-02-01_02__odeleongt.txt"
UCI_CSV = DATASETS / "uci_hpc_first3000rows_2006-12-16__devyogeshwaran.csv"
SUMMER = datetime(2026, 6, 21, 8, 0, 3, tzinfo=UTC)
SOLAR_3P = SiteConfig(seed=5, phases=3, pv_peak_w=8000.0)


def _samples(household: Household, start: datetime, step_s: int, count: int) -> list:
    return [household.state_at(start + timedelta(seconds=step_s * i)) for i in range(count)]


def test_same_seed_and_time_give_the_same_reading_in_any_order() -> None:
    instants = [SUMMER + timedelta(days=40 * i, seconds=37 * i) for i in range(5)]
    physics._model_for.cache_clear()
    forward = [Household(SOLAR_3P).state_at(ts) for ts in instants]
    physics._model_for.cache_clear()
    backward = [Household(SOLAR_3P).state_at(ts) for ts in reversed(instants)]
    assert forward == backward[::-1]
    other_seed = Household(SiteConfig(seed=6, phases=3, pv_peak_w=8000.0))
    assert other_seed.state_at(instants[0]) != forward[0]


def test_state_is_aware_utc_and_physically_plausible() -> None:
    state = Household(SOLAR_3P).state_at(SUMMER.astimezone(ZoneInfo("Europe/Oslo")))
    assert state.ts == SUMMER and state.ts.tzinfo is UTC
    assert 49.8 < state.frequency_hz < 50.2
    assert 10 < state.temperature_c < 45
    assert len(state.phases) == 3
    for phase in state.phases:
        assert 215 < phase.voltage_v < 245
        assert 0 <= phase.power_factor <= 1
        assert phase.current_a >= 0


@pytest.mark.parametrize("config", [SiteConfig(), SOLAR_3P], ids=["1-phase", "3-phase-pv"])
def test_registers_are_the_exact_integral_of_power(config: SiteConfig) -> None:
    household = Household(config)
    states = _samples(household, SUMMER, physics.STEP_S, 6 * 60 * 3)  # three hours
    end = states[-1].ts + timedelta(seconds=physics.STEP_S)
    last = household.state_at(end)
    for p in range(config.phases):
        imported = sum(max(s.phases[p].power_w, 0.0) for s in states) * physics.STEP_S / 3.6e6
        exported = sum(max(-s.phases[p].power_w, 0.0) for s in states) * physics.STEP_S / 3.6e6
        metered_in = last.phases[p].energy_import_kwh - states[0].phases[p].energy_import_kwh
        metered_out = last.phases[p].energy_export_kwh - states[0].phases[p].energy_export_kwh
        assert metered_in == pytest.approx(imported, rel=1e-3, abs=1e-6)
        assert metered_out == pytest.approx(exported, rel=1e-3, abs=1e-6)
    import_kwh, export_kwh = household.energy_between(states[0].ts, end)
    assert import_kwh == pytest.approx(last.total.energy_import_kwh - states[0].total.energy_import_kwh)
    assert export_kwh == pytest.approx(last.total.energy_export_kwh - states[0].total.energy_export_kwh)
    load_kwh = sum(s.load_w for s in states) * physics.STEP_S / 3.6e6
    pv_kwh = sum(s.pv_w for s in states) * physics.STEP_S / 3.6e6
    assert household.load_energy_between(states[0].ts, end) == pytest.approx(load_kwh, rel=1e-3)
    assert household.pv_energy_between(states[0].ts, end) == pytest.approx(pv_kwh, rel=1e-3, abs=1e-9)


def test_solar_site_exports_at_noon_and_not_at_night() -> None:
    household = Household(SOLAR_3P)
    noon = datetime(2026, 6, 21, 11, 0, tzinfo=UTC)
    assert household.pv_energy_between(noon, noon + timedelta(hours=1)) > 1.0
    night = datetime(2026, 12, 21, 23, 0, tzinfo=UTC)
    assert household.state_at(night).pv_w == 0.0
    assert household.pv_energy_between(night, night + timedelta(hours=4)) == 0.0
    june = datetime(2026, 6, 1, tzinfo=UTC)
    import_kwh, export_kwh = household.energy_between(june, june + timedelta(days=30))
    assert export_kwh > 50 and import_kwh > 10
    assert household.pv_energy_between(june, june + timedelta(days=30)) > export_kwh


def test_three_phase_total_is_the_sum_of_the_phases() -> None:
    household = Household(SOLAR_3P)
    for state in _samples(household, SUMMER, 3607, 30):
        total, phases = state.total, state.phases
        assert total.power_w == pytest.approx(sum(p.power_w for p in phases), abs=0.05)
        assert total.current_a == pytest.approx(sum(p.current_a for p in phases), abs=0.005)
        assert total.reactive_power_var == pytest.approx(sum(p.reactive_power_var for p in phases), abs=0.05)
        assert total.energy_import_kwh == pytest.approx(sum(p.energy_import_kwh for p in phases))
        assert total.energy_export_kwh == pytest.approx(sum(p.energy_export_kwh for p in phases))
        assert total.voltage_v == pytest.approx(sum(p.voltage_v for p in phases) / 3, abs=0.01)
        assert state.load_w - state.pv_w == pytest.approx(total.power_w, abs=0.1)


def test_registers_never_decrease_except_at_a_reset_or_replacement() -> None:
    reset_at = SUMMER + timedelta(hours=3, seconds=5)
    replaced_at = SUMMER + timedelta(hours=7)
    config = SiteConfig(seed=3, pv_peak_w=4000.0, resets=(reset_at,), replacements=((replaced_at, 500.0),))
    household = Household(config)
    states = _samples(household, SUMMER, 113, 300)
    events = (reset_at, replaced_at)
    drops = []
    for before, after in itertools.pairwise(states):
        for register in ("energy_import_kwh", "energy_export_kwh"):
            if getattr(after.total, register) < getattr(before.total, register):
                drops.append(next(at for at in events if before.ts < at <= after.ts))
    assert set(drops) <= set(events) and reset_at in drops
    at_reset = household.state_at(reset_at).total
    assert at_reset.energy_import_kwh == 0.0 and at_reset.energy_export_kwh == 0.0
    at_replacement = household.state_at(replaced_at).total
    assert at_replacement.energy_import_kwh == 500.0 and at_replacement.energy_export_kwh == 0.0


@pytest.mark.parametrize(
    "midnight",
    [
        datetime(2026, 7, 1, tzinfo=UTC),
        datetime(2023, 3, 1, tzinfo=UTC),  # before the register epoch
        physics.REGISTER_EPOCH + timedelta(days=32 * 9),  # a memo block boundary
    ],
)
def test_registers_never_step_back_at_midnight_even_by_rounding(midnight: datetime) -> None:
    household = Household(SOLAR_3P)
    offsets_us = sorted({*range(-3_000_000, 3_000_000, 250_000), -1, 0, 1})
    states = [household.state_at(midnight + timedelta(microseconds=us)) for us in offsets_us]
    for before, after in itertools.pairwise(states):
        for b, a in zip((before.total, *before.phases), (after.total, *after.phases), strict=True):
            assert a.energy_import_kwh >= b.energy_import_kwh
            assert a.energy_export_kwh >= b.energy_export_kwh


def test_energy_between_sums_positive_increments_across_a_reset() -> None:
    reset_at = SUMMER + timedelta(minutes=95, seconds=17)
    household = Household(SiteConfig(seed=9, resets=(reset_at,)))
    start, end = SUMMER, SUMMER + timedelta(hours=4)
    just_before = household.state_at(reset_at - timedelta(microseconds=1)).total
    increments = (
        just_before.energy_import_kwh
        - household.state_at(start).total.energy_import_kwh
        + household.state_at(end).total.energy_import_kwh
    )
    assert household.energy_between(start, end)[0] == pytest.approx(increments, rel=1e-9)
    assert household.load_energy_between(start, end) == pytest.approx(increments, rel=1e-9)


def test_offline_windows() -> None:
    window = (SUMMER, SUMMER + timedelta(hours=2))
    household = Household(SiteConfig(offline=(window,)))
    assert household.is_offline(SUMMER + timedelta(minutes=30))
    assert not household.is_offline(SUMMER - timedelta(seconds=1))
    assert not household.is_offline(window[1])


def test_a_year_away_and_repeat_queries_agree_with_a_fresh_model() -> None:
    """How fast a far jump or a repeat is belongs in ``bench/``; here only what it answers."""
    far = SUMMER + timedelta(days=365)
    physics._model_for.cache_clear()
    direct = Household(SOLAR_3P).state_at(far)
    physics._model_for.cache_clear()
    household = Household(SOLAR_3P)
    household.state_at(SUMMER)
    assert household.state_at(far) == direct
    repeated = [household.state_at(SUMMER + timedelta(seconds=i)) for i in range(200)]
    physics._model_for.cache_clear()
    fresh = Household(SOLAR_3P)
    assert [fresh.state_at(SUMMER + timedelta(seconds=i)) for i in range(200)] == repeated
    assert household.state_at(far) == direct


def test_replay_follows_the_uci_trace_and_repeats_it() -> None:
    household = Household(SiteConfig(replay_trace=UCI_TXT, tz="Europe/Paris"))
    # First row: 1/2/2007 00:00 local, 0.326 kW; the trace is 2880 minutes long.
    first = datetime(2007, 2, 1, 0, 0, 5, tzinfo=ZoneInfo("Europe/Paris"))
    assert household.state_at(first).load_w == pytest.approx(326.0, rel=0.031)
    later = first.astimezone(UTC) + timedelta(minutes=2880 * 1000)
    assert household.state_at(later).load_w == pytest.approx(326.0, rel=0.031)
    day = datetime(2026, 3, 1, tzinfo=UTC)
    two_days = household.load_energy_between(day, day + timedelta(minutes=2880))
    assert two_days == pytest.approx(
        household.load_energy_between(day + timedelta(days=30), day + timedelta(days=32))
    )


def test_replay_of_the_comma_trace_in_three_phases() -> None:
    household = Household(SiteConfig(replay_trace=UCI_CSV, phases=3, tz="Europe/Paris"))
    first = datetime(2006, 12, 16, 17, 24, 5, tzinfo=ZoneInfo("Europe/Paris"))
    state = household.state_at(first)
    assert state.load_w == pytest.approx(4216.0, rel=0.031)
    assert state.total.power_w == pytest.approx(sum(p.power_w for p in state.phases), abs=0.05)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="phases"):
        SiteConfig(phases=2)
    with pytest.raises(ValueError, match="naive"):
        SiteConfig(resets=(datetime(2026, 1, 1),))
    with pytest.raises(ValueError, match="naive"):
        Household(SiteConfig()).state_at(datetime(2026, 1, 1))


def test_clock_runs_at_its_speed_from_the_last_set() -> None:
    real_before_s = time.monotonic()
    clock = SimClock(SUMMER, speed=3600.0)
    wait_until(lambda: clock.now() - SUMMER >= timedelta(seconds=30), "30 simulated seconds to pass")
    real_after_s = time.monotonic()
    assert clock.now() - SUMMER <= timedelta(seconds=(time.monotonic() - real_before_s) * 3600.0)
    assert real_after_s - real_before_s >= 30 / 3600.0  # never ahead of its speed
    clock.set_speed(0.0)
    clock.set(SUMMER)
    assert clock.now() == SUMMER
    assert clock.now().tzinfo is UTC
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        clock.set_speed(-1.0)
