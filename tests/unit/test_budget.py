"""The budget store: shared pacing and token cache, on the embedded SQLite store and real Redis."""

from __future__ import annotations

import itertools
import logging
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from target_sfmc.auth import TokenProvider
from target_sfmc.budget import (
    AccountBudget,
    SharedPacer,
    default_store_path,
    open_store,
    url_problem,
)
from target_sfmc.budget_sqlite import SqliteBudgetStore
from target_sfmc.budget_store import BudgetStore, CachedToken, Reservation, redact_url
from target_sfmc.limiter import RateLimiter
from target_sfmc.settings import parse_settings
from target_sfmc.settings_schema import CONFIG_SCHEMA

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture(params=["local", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL: a SQLite file of this test, or the test session's real Redis."""
    if request.param == "local":
        return f"sqlite://{tmp_path / 'store' / 'budget.sqlite3'}"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def stores(store_url: str) -> Iterator[Callable[[], BudgetStore]]:
    """Open the store as separate processes would: each call is a new connection."""
    opened: list[BudgetStore] = []

    def make() -> BudgetStore:
        store = open_store(store_url)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def open_budget(url: str | None, **overrides: Any) -> AccountBudget:
    values: dict[str, Any] = {
        "rate_limit_url": url,
        "client_id": "client-a",
        "client_secret": "secret-never-logged",
        "account_id": "5000123",
        "auth_base_url": "https://auth.sfmc.test",
        "legacy_auth": False,
        "requests_per_second": 20,
        "expected_processes": 1,
        "token_cache": True,
    }
    values.update(overrides)
    return AccountBudget.open(**values)


# --- URLs ----------------------------------------------------------------------------------


def test_a_url_is_shown_without_its_password() -> None:
    assert (
        redact_url("redis://:s3cret@cache.internal:6380/2") == "redis://:***@cache.internal:6380/2"
    )
    assert redact_url("rediss://user:s3cret@h/0") == "rediss://user:***@h/0"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("redis://localhost:6379/0", True),
        ("rediss://:pw@cache.example.com:6380/3", True),
        ("redis://:pw@cache", True),
        ("sqlite:///var/lib/target-sfmc/budget.sqlite3", True),
        ("sqlite://relative.db", False),
        ("redis:///0", False),
        ("redis://host:6379/zero", False),
        ("http://host:6379/0", False),
        ("memcached://:pw@host", False),
    ],
)
def test_rate_limit_url_problems_are_one_sentence_without_the_url(url: str, ok: bool) -> None:  # noqa: FBT001
    problem = url_problem(url)
    assert (problem is None) == ok
    if problem is not None:
        assert problem.startswith("Setting 'rate_limit_url'")
        assert "pw" not in problem
        assert url not in problem


def test_the_budget_settings_reach_the_client() -> None:
    base = {"client_id": "a", "client_secret": "b", "subdomain": "mc563885gzs27c5t9-63k636ttgm"}
    settings, errors = parse_settings(base)
    assert errors == []
    assert settings.client.rate_limit_url is None
    assert settings.client.token_cache is True
    assert settings.client.expected_processes == 1
    url = "redis://:pw-in-url@cache:6379/1"
    settings, errors = parse_settings(
        {**base, "rate_limit_url": url, "token_cache": False, "expected_processes": 3}
    )
    assert errors == []
    assert settings.client.rate_limit_url == url
    assert settings.client.token_cache is False
    assert settings.client.expected_processes == 3
    assert "pw-in-url" not in repr(settings)
    _, errors = parse_settings({**base, "rate_limit_url": "http://:pw-in-url@cache:6379/1"})
    assert len(errors) == 1
    assert "pw-in-url" not in errors[0]
    # --about marks it secret (Meltano: sensitive), so its value is treated like the secret's.
    assert CONFIG_SCHEMA["properties"]["rate_limit_url"]["secret"] is True


def test_the_embedded_store_lives_in_the_users_cache_directory(tmp_path: Path) -> None:
    # tests/conftest.py points XDG_CACHE_HOME at a directory of this test.
    path = default_store_path()
    assert path.name == "budget.sqlite3"
    assert path.parent.name == "target-sfmc"
    budget = open_budget(None)
    try:
        assert budget.shared
        assert budget.kind == "local"
        assert Path(budget.location) == path
        assert path.exists()
    finally:
        budget.close()


def test_the_local_store_and_its_directory_are_private(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "cache" / "budget.sqlite3"
    store = SqliteBudgetStore(path)
    try:
        store.save_token("k", CachedToken("tok-123", None, time.time() + 60, time.time() + 120))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        for sidecar in path.parent.glob("budget.sqlite3-*"):  # WAL and shared-memory files
            assert stat.S_IMODE(sidecar.stat().st_mode) & 0o077 == 0, sidecar
    finally:
        store.close()


# --- tokens and leases ---------------------------------------------------------------------


def test_a_token_is_kept_until_it_expires(stores: Callable[[], BudgetStore]) -> None:
    one, other = stores(), stores()
    now = time.time()
    assert one.load_token("acct") is None
    one.save_token("acct", CachedToken("tok-1", "https://rest.test/", now + 60, now + 120))
    found = other.load_token("acct")
    assert found == CachedToken("tok-1", "https://rest.test/", now + 60, now + 120)
    assert other.load_token("another-account") is None
    one.save_token("old", CachedToken("tok-0", None, now - 20, now - 1))
    assert other.load_token("old") is None


def test_dropping_a_token_spares_a_newer_one(stores: Callable[[], BudgetStore]) -> None:
    one, other = stores(), stores()
    now = time.time()
    one.save_token("acct", CachedToken("tok-new", None, now + 60, now + 120))
    other.drop_token("acct", "tok-old")  # a 401 to a token already replaced
    assert one.load_token("acct") is not None
    other.drop_token("acct", "tok-new")
    assert one.load_token("acct") is None


def test_one_holder_of_the_refresh_lease_at_a_time(stores: Callable[[], BudgetStore]) -> None:
    one, other = stores(), stores()
    assert one.try_lease("acct", "p1", 30)
    assert one.try_lease("acct", "p1", 30)  # renewing is fine
    assert not other.try_lease("acct", "p2", 30)
    other.release_lease("acct", "p2")  # not the holder: nothing happens
    assert not other.try_lease("acct", "p2", 30)
    one.release_lease("acct", "p1")
    assert other.try_lease("acct", "p2", 0.2)
    time.sleep(0.3)  # an abandoned lease expires
    assert one.try_lease("acct", "p1", 30)


# --- pacing --------------------------------------------------------------------------------


class RecordingStore:
    """A store whose reservations are noted (starts on the monotonic clock)."""

    def __init__(self, inner: BudgetStore, reserved: list[float], lock: threading.Lock) -> None:
        self.inner = inner
        self.reserved = reserved
        self.lock = lock

    def reserve_start(self, key: str, spacing: float) -> Reservation:
        reservation = self.inner.reserve_start(key, spacing)
        with self.lock:
            self.reserved.append(reservation.start)
        return reservation

    def push_back(self, key: str, seconds: float) -> None:
        self.inner.push_back(key, seconds)


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    ordered = sorted(times)
    best = 0
    start = 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_processes_sharing_a_store_take_turns_and_never_exceed_the_budget(
    stores: Callable[[], BudgetStore], store_url: str
) -> None:
    """Three 'processes' (own connection each), four threads each, one budget of 10/s."""
    reserved: list[float] = []
    lock = threading.Lock()
    per_process = [0, 0, 0]
    deadline = time.monotonic() + 3.0
    pacers = [
        SharedPacer(RecordingStore(stores(), reserved, lock), "acct", 10, 1.05)  # type: ignore[arg-type]
        for _ in range(3)
    ]

    def worker(index: int) -> None:
        while time.monotonic() < deadline:
            pacers[index].wait_turn()
            with lock:
                per_process[index] += 1

    threads = [threading.Thread(target=worker, args=(i % 3,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The store gave starts 105 ms apart (at most 10 in any second), whoever asked: exactly
    # on this machine's clock; Redis keeps its own, and a start moved to ours may seem earlier
    # by the round trip (on a busy machine, a few milliseconds).
    slack = 1e-6 if store_url.startswith("sqlite") else 0.03
    ordered = sorted(reserved)
    assert all(b - a >= 0.105 - slack for a, b in itertools.pairwise(ordered)), ordered
    assert max_in_any_window(reserved) <= 10
    assert sum(per_process) == len(reserved)
    assert len(reserved) >= 20  # it did pace, not stall
    # Turns, not races: each process got about a third.
    assert min(per_process) >= max(per_process) / 2, per_process


def test_a_start_taken_late_moves_the_schedule_back(stores: Callable[[], BudgetStore]) -> None:
    store, other = stores(), stores()
    slept: list[float] = []

    def oversleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds + 0.06)

    pacer = SharedPacer(store, "acct", 20, 1.05, sleep=oversleep)
    first = other.reserve_start("acct", pacer.spacing)  # someone else holds the next start
    pacer.wait_turn()  # woke ~60 ms after its start (52.5 ms after the first)
    taken = time.monotonic()
    assert pacer.pushed_back == 1
    assert slept
    # The next start is a full spacing after the late one was taken, not after its slot.
    following = other.reserve_start("acct", pacer.spacing)
    assert following.sleep_until >= taken + pacer.spacing - 0.01  # less the push round trip
    assert following.start - first.start >= 2 * pacer.spacing + 0.05


def test_a_limiter_with_a_shared_store_takes_its_turns_from_it(store_url: str) -> None:
    budget = open_budget(store_url, requests_per_second=1000)
    try:
        limiter = RateLimiter(1000, 4, budget=budget)
        assert limiter.shared
        for _ in range(5):
            with limiter.slot():
                pass
        assert budget.summary().startswith(f"limiter=shared:{budget.kind} ")
    finally:
        budget.close()


def test_a_store_lost_mid_run_is_said_once_and_pacing_goes_on_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    budget = open_budget(f"sqlite://{tmp_path / 'b.sqlite3'}", expected_processes=4)
    limiter = RateLimiter(20, 4, budget=budget)
    with limiter.slot():
        pass
    assert limiter.shared
    assert budget.store is not None
    budget.store.close()  # the store breaks under the run
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            with limiter.slot():
                pass
    assert not limiter.shared
    assert limiter.requests_per_second == 5  # 20 / expected_processes 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "5 requests/s" in warnings[0].getMessage()
    assert budget.summary() == "limiter=process:5/s token_cache=process"


def test_an_unreachable_redis_is_said_once_without_its_password(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://:p4ssw0rd-never-shown@127.0.0.1:{closed_port}/0"
    with caplog.at_level(logging.WARNING):
        budget = open_budget(url, expected_processes=3)
        limiter = RateLimiter(20, 4, budget=budget)
    assert not budget.shared
    assert not limiter.shared
    assert limiter.requests_per_second == pytest.approx(20 / 3)
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "p4ssw0rd" not in message
    assert f"redis://:***@127.0.0.1:{closed_port}/0" in message
    assert "6.667 requests/s" in message
    assert "p4ssw0rd" not in budget.describe_limiter() + budget.describe_token_cache()
    assert budget.summary() == "limiter=process:6.667/s token_cache=process"


# --- the token cache through TokenProvider -------------------------------------------------


class FakeResponse:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status_code = status
        self._body = body

    def json(self) -> dict[str, Any]:
        return self._body


class FakeAuth:
    """A token endpoint: counts requests, issues tok-1, tok-2, … after a short delay."""

    def __init__(self, expires_in: int = 1080, delay: float = 0.2) -> None:
        self.requests = 0
        self.expires_in = expires_in
        self.delay = delay
        self.lock = threading.Lock()

    def send(self, method: str, url: str, **_: Any) -> FakeResponse:
        with self.lock:
            self.requests += 1
            number = self.requests
        time.sleep(self.delay)
        return FakeResponse(200, {"access_token": f"tok-{number}", "expires_in": self.expires_in})


def provider(auth: FakeAuth, budget: AccountBudget | None) -> TokenProvider:
    return TokenProvider(
        auth,  # type: ignore[arg-type]
        auth_base_url="https://auth.sfmc.test",
        client_id="client-a",
        client_secret="secret-never-logged",
        account_id="5000123",
        legacy=False,
        budget=budget,
    )


def test_processes_starting_together_make_one_token_request(store_url: str) -> None:
    auth = FakeAuth()
    budgets = [open_budget(store_url) for _ in range(4)]
    providers = [provider(auth, budget) for budget in budgets]
    got: list[str] = []
    lock = threading.Lock()

    def run(p: TokenProvider) -> None:
        value = p.get().value
        with lock:
            got.append(value)

    threads = [threading.Thread(target=run, args=(p,)) for p in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for budget in budgets:
        budget.close()
    assert auth.requests == 1
    assert got == ["tok-1"] * 4
    assert sum(p.fetched for p in providers) == 1
    assert sum(p.reused for p in providers) == 3


def test_later_runs_reuse_the_token_until_it_is_due(store_url: str) -> None:
    auth = FakeAuth(delay=0)
    first = open_budget(store_url)
    assert provider(auth, first).get().value == "tok-1"
    first.close()
    second = open_budget(store_url)
    assert provider(auth, second).get().value == "tok-1"
    second.close()
    assert auth.requests == 1
    # Another account (MID), auth server or secret never gets it.
    for other in (
        {"account_id": "5000999"},
        {"auth_base_url": "https://other.auth.test"},
        {"client_secret": "rotated-secret"},
    ):
        budget = open_budget(store_url, **other)
        expected = f"tok-{auth.requests + 1}"
        assert provider(auth, budget).get().value == expected
        budget.close()
    assert auth.requests == 4


def test_a_token_due_for_refresh_is_refreshed_by_one_process_while_others_use_it(
    store_url: str,
) -> None:
    auth = FakeAuth(delay=0)
    budget = open_budget(store_url)
    assert budget.store is not None
    now = time.time()
    # In its refresh window (refresh_at passed) but valid for another 100 s.
    budget.store.save_token(budget.token_key, CachedToken("tok-old", None, now - 1, now + 100))
    assert budget.store.try_lease(budget.token_key, "another-process", 30)
    assert provider(auth, budget).get().value == "tok-old"  # borrowed while the other refreshes
    assert auth.requests == 0
    budget.store.release_lease(budget.token_key, "another-process")
    assert provider(auth, budget).get().value == "tok-1"  # the lease is free: refresh
    assert auth.requests == 1
    assert budget.store.load_token(budget.token_key).value == "tok-1"  # type: ignore[union-attr]
    budget.close()


def test_a_401_drops_the_cached_token_for_every_process(store_url: str) -> None:
    auth = FakeAuth(delay=0)
    one, two = open_budget(store_url), open_budget(store_url)
    first, second = provider(auth, one), provider(auth, two)
    assert first.get().value == "tok-1"
    assert second.get().value == "tok-1"
    second.invalidate("tok-1")  # SFMC refused it
    assert provider(auth, open_budget(store_url)).get().value == "tok-2"
    first.invalidate("tok-1")  # late news of the old one leaves the new one cached
    assert one.store is not None
    assert one.store.load_token(one.token_key).value == "tok-2"  # type: ignore[union-attr]
    assert auth.requests == 2
    one.close()
    two.close()


def test_token_cache_off_keeps_tokens_in_the_process(store_url: str) -> None:
    auth = FakeAuth(delay=0)
    for _ in range(2):
        budget = open_budget(store_url, token_cache=False)
        assert provider(auth, budget).get().value == f"tok-{auth.requests}"
        assert budget.token_store() is None
        assert budget.summary().endswith("token_cache=off")
        budget.close()
    assert auth.requests == 2


def test_tokens_and_secrets_stay_out_of_the_logs(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = FakeAuth(delay=0)
    budget = open_budget(store_url)
    provider(auth, budget).get()
    provider(auth, budget).get()
    text = caplog.text + budget.describe_limiter() + budget.describe_token_cache()
    assert "Reusing the cached SFMC access token" in caplog.text
    assert "tok-1" not in text
    assert "secret-never-logged" not in text
    assert "redis-test-pw" not in text
    budget.close()
