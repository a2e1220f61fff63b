"""What every sink of a run shares: settings, one SFMC client, thread pools and the report."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from target_sfmc.accounting import RunReport
from target_sfmc.client import SfmcClient
from target_sfmc.data_extensions import DataExtensionCatalog
from target_sfmc.loading.contacts import ContactRegistry
from target_sfmc.loading.journey_exit import JourneyExitLoader
from target_sfmc.loading.journeys import JourneyEventLoader
from target_sfmc.loading.streaming import MIN_UNFINISHED_JOBS
from target_sfmc.mirror import Mirror

if TYPE_CHECKING:
    from collections.abc import Callable

    from target_sfmc.settings import TargetSettings


@dataclass
class LoadingRuntime:
    """The run's shared parts.

    Two thread pools: ``executor`` runs single requests (rowsets, contacts, events, the
    parts of an async load); ``pipeline`` runs the jobs sent while reading (a few rowsets, or
    a whole async request), which wait on ``executor`` jobs and so must never share its threads.
    """

    settings: TargetSettings
    client: SfmcClient
    executor: ThreadPoolExecutor
    pipeline: ThreadPoolExecutor
    report: RunReport
    contacts: ContactRegistry
    events: JourneyEventLoader
    exits: JourneyExitLoader
    data_extensions: DataExtensionCatalog
    batches_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Data Extension key -> the sinks that write it (rows for one key keep input order).
    writers: dict[str, list[Any]] = field(default_factory=dict)
    # Data Extensions more than one sink writes (checked for every row).
    shared_destinations: set[str] = field(default_factory=set)
    # Loads a sink's batch now (the target's ``drain_one``), set once the target exists.
    drain: Callable[[Any], None] = field(default=lambda _sink: None)
    # The mirrored Data Extensions (``load_method: overwrite``), else None.
    mirror: Mirror | None = None

    @classmethod
    def create(cls, settings: TargetSettings, user_agent: str) -> LoadingRuntime:
        """Build the shared runtime.

        Args:
            settings: Target settings.
            user_agent: HTTP User-Agent.

        Returns:
            The runtime.
        """
        client = SfmcClient(settings.client, user_agent=user_agent)
        executor = ThreadPoolExecutor(
            max_workers=max(4, settings.client.max_concurrent_requests * 2),
            thread_name_prefix="target-sfmc-request",
        )
        runtime = cls(
            settings=settings,
            client=client,
            executor=executor,
            pipeline=ThreadPoolExecutor(
                max_workers=max(MIN_UNFINISHED_JOBS, settings.client.max_concurrent_requests),
                thread_name_prefix="target-sfmc-job",
            ),
            report=RunReport(client.stats, settings.dead_letter_path),
            contacts=ContactRegistry(client, executor),
            events=JourneyEventLoader(client, executor),
            exits=JourneyExitLoader(client, executor),
            data_extensions=DataExtensionCatalog(client, settings),
        )
        if settings.mirror:
            runtime.mirror = Mirror(runtime)
        return runtime

    def add_writer(self, key: str, sink: Any) -> None:
        """Note that a sink writes a Data Extension.

        Args:
            key: Data Extension key.
            sink: The sink.
        """
        writers = self.writers.setdefault(key, [])
        writers.append(sink)
        if len(writers) > 1:
            self.shared_destinations.add(key)

    def batch_started(self) -> None:
        """Note that a batch is being loaded (SIGTERM must not emit state now)."""
        with self.lock:
            self.batches_in_flight += 1

    def batch_finished(self) -> None:
        """Note that a batch finished loading, successfully or not."""
        with self.lock:
            self.batches_in_flight -= 1

    def shutdown(self) -> None:
        """Release threads, connections and the dead-letter file."""
        self.pipeline.shutdown(wait=True, cancel_futures=True)
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.client.close()
        self.report.close()
