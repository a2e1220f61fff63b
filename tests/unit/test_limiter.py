"""Process-wide rate limiter with an injected clock and sleep."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from target_sfmc.limiter import INITIAL_IN_FLIGHT, InFlightLimit, RateLimiter

EPS = 1e-9


class FakeClock:
    """A clock that only moves when the code under test sleeps (or the test advances it)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def run_starts(limiter: RateLimiter, clock: FakeClock, gaps: list[float]) -> list[float]:
    starts = []
    for gap in gaps:
        clock.advance(gap)
        with limiter.slot():
            starts.append(clock())
    return starts


def max_starts_in_a_second(starts: list[float]) -> int:
    ordered = sorted(starts)
    best = 0
    for i, first in enumerate(ordered):
        count = sum(1 for s in ordered[i:] if s < first + 1.0 - EPS)
        best = max(best, count)
    return best


def test_rejects_non_positive_settings() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, 1)
    with pytest.raises(ValueError):
        RateLimiter(1, 0)
    with pytest.raises(ValueError):
        RateLimiter(-5, 4)


def test_first_request_starts_immediately() -> None:
    clock = FakeClock(start=1000.0)
    limiter = RateLimiter(5, 2, clock=clock, sleep=clock.sleep)
    with limiter.slot():
        pass
    assert clock.now == 1000.0
    assert all(s == 0 for s in clock.sleeps)


def test_back_to_back_starts_are_spaced_evenly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5, 4, clock=clock, sleep=clock.sleep)
    starts = run_starts(limiter, clock, [0.0] * 11)
    assert limiter.spacing >= 0.2  # at least 1/rps apart (a small safety margin is allowed)
    assert limiter.spacing <= 0.2 * 1.06  # ... but close to the ceiling (a few % margin)
    assert starts == pytest.approx([i * limiter.spacing for i in range(11)])
    assert max_starts_in_a_second(starts) <= 5


def test_never_more_than_n_starts_in_any_second() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, 4, clock=clock, sleep=clock.sleep)
    starts = run_starts(limiter, clock, [0.0] * 200)
    assert max_starts_in_a_second(starts) == 20
    # 200 requests at 20/s need close to 10 s, not much more (a small safety margin).
    assert 9.9 <= starts[-1] <= 10.0 * 1.06


def test_idle_time_does_not_allow_a_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4, 4, clock=clock, sleep=clock.sleep)
    starts = run_starts(limiter, clock, [0.0, 0.0, 30.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(g >= 0.25 - EPS for g in gaps)
    assert max_starts_in_a_second(starts) <= 4


@settings(max_examples=150, deadline=None)
@given(
    rps=st.integers(min_value=1, max_value=50),
    gaps=st.lists(
        st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=1.5, allow_nan=False)),
        min_size=1,
        max_size=120,
    ),
)
def test_limit_property(rps: int, gaps: list[float]) -> None:
    clock = FakeClock(start=5.0)
    limiter = RateLimiter(rps, 4, clock=clock, sleep=clock.sleep)
    starts = run_starts(limiter, clock, gaps)
    assert max_starts_in_a_second(starts) <= rps
    spacing = limiter.spacing
    assert 1.0 / rps <= spacing <= 1.06 / rps
    for earlier, later in itertools.pairwise(starts):
        assert later - earlier >= spacing - EPS
    # No needless waiting: a request waits only as long as the spacing requires.
    for i in range(1, len(starts)):
        assert starts[i] <= max(starts[i - 1] + spacing, starts[i - 1] + gaps[i]) + EPS


def test_a_late_start_does_not_crowd_a_second() -> None:
    """A thread that wakes after its reserved start must not squeeze N+1 starts into a second."""
    clock = FakeClock()
    limiter = RateLimiter(5, 12, clock=clock, sleep=clock.sleep)
    reserved = [limiter._reserve_start()[0] for _ in range(12)]
    wakes = [start + (0.3 if i == 0 else 0.0) for i, start in enumerate(reserved)]
    starts = []
    for index in sorted(range(12), key=lambda i: wakes[i]):
        clock.now = max(clock.now, wakes[index])
        limiter._admit(reserved[index])
        starts.append(clock())
    assert max_starts_in_a_second(starts) <= 5
    assert max(starts) < reserved[-1] + 1.0  # the schedule moved back, not far


def test_reservations_from_many_threads_are_distinct_and_spaced() -> None:
    frozen = 100.0
    local = threading.local()
    starts: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        local.wait = seconds

    limiter = RateLimiter(10, 8, clock=lambda: frozen, sleep=sleep)

    def worker() -> None:
        for _ in range(25):
            local.wait = 0.0
            with limiter.slot():
                start = frozen + local.wait
            with lock:
                starts.append(start)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(starts) == 200
    ordered = sorted(starts)
    assert ordered == pytest.approx([frozen + i * limiter.spacing for i in range(200)])
    assert max_starts_in_a_second(starts) <= 10


def test_concurrency_cap_is_honoured() -> None:
    limiter = RateLimiter(1_000_000, 3, clock=lambda: 0.0, sleep=lambda _s: None)
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    done = threading.Barrier(12)

    def worker() -> None:
        nonlocal in_flight, peak
        done.wait()
        for _ in range(3):
            with limiter.slot():
                with lock:
                    in_flight += 1
                    peak = max(peak, in_flight)
                time.sleep(0.01)
                with lock:
                    in_flight -= 1

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 3
    assert in_flight == 0


def test_slot_is_released_when_the_request_fails() -> None:
    limiter = RateLimiter(1_000_000, 1, clock=lambda: 0.0, sleep=lambda _s: None)
    with pytest.raises(RuntimeError), limiter.slot():
        raise RuntimeError
    acquired = threading.Event()

    def worker() -> None:
        with limiter.slot():
            acquired.set()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout=2)
    assert acquired.is_set()


def test_in_flight_starts_at_the_old_fixed_number_within_the_ceiling() -> None:
    assert InFlightLimit(20, 48).limit == INITIAL_IN_FLIGHT
    assert InFlightLimit(20, 2).limit == 2


@pytest.mark.parametrize(
    ("latency", "expected"),
    [(0.01, 3), (0.1, 5), (0.5, 17), (1.5, 47)],
)
def test_in_flight_follows_littles_law_with_headroom(latency: float, expected: int) -> None:
    # rate x latency x 1.5, plus 2 waiting for their start.
    limit = InFlightLimit(20, 64)
    for _ in range(5):
        limit.acquire()
        limit.release(latency)
    assert limit.limit == expected


def test_in_flight_never_exceeds_the_ceiling() -> None:
    limit = InFlightLimit(20, 10)
    limit.acquire()
    limit.release(30.0)
    assert limit.limit == 10


def test_one_slow_answer_moves_the_estimate_little() -> None:
    limit = InFlightLimit(20, 200)
    for _ in range(50):
        limit.acquire()
        limit.release(0.5)
    limit.acquire()
    limit.release(10.0)
    assert limit.latency == pytest.approx(0.5 + 0.1 * 9.5)
    assert limit.limit < 60


def test_a_failed_request_teaches_nothing() -> None:
    limit = InFlightLimit(20, 64)
    limit.acquire()
    limit.release(None)
    assert limit.latency is None
    assert limit.limit == INITIAL_IN_FLIGHT


def test_a_lower_rate_needs_fewer_in_flight() -> None:
    limit = InFlightLimit(20, 64)
    limit.acquire()
    limit.release(1.0)
    assert limit.limit == 32
    limit.set_rate(5)
    assert limit.limit == 10


def test_slot_measures_the_latency_from_the_start_not_the_wait() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, 10, clock=clock, sleep=clock.sleep)
    with limiter.slot():
        clock.advance(0.4)
    with limiter.slot():  # waits ~1 s for its start, then takes 0.4 s
        clock.advance(0.4)
    assert limiter.in_flight.latency == pytest.approx(0.4)


def test_a_raised_limit_wakes_the_waiting_requests() -> None:
    limit = InFlightLimit(1_000, 64)
    for _ in range(INITIAL_IN_FLIGHT):
        limit.acquire()
    entered = threading.Semaphore(0)

    def waiter() -> None:
        limit.acquire()
        entered.release()

    threads = [threading.Thread(target=waiter, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert not entered.acquire(timeout=0.2)  # the limit holds them back
    limit.release(0.5)  # learns: 1,000/s at 0.5 s needs far more than 4 in flight
    for _ in range(8):
        assert entered.acquire(timeout=5)
