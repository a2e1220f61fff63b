"""Sinks: collect mapped rows per batch, load them, account for every record (SPEC §5, §6)."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from singer_sdk.sinks import BatchSink

from target_sfmc.accounting import RunReport
from target_sfmc.client import SfmcClient
from target_sfmc.dates import DateParser
from target_sfmc.errors import RowsRejectedError, TargetSfmcError, without_quoted_values
from target_sfmc.lanes import compile_lane
from target_sfmc.loaders import (
    ASYNC_ROWS_PER_REQUEST,
    ContactRegistry,
    DataExtensionLoader,
    JourneyEventLoader,
    LoadResult,
    Rejection,
    wait_all,
)
from target_sfmc.routing import (
    REJECTED,
    UNCONFIGURED_STREAM,
    DataExtensionRow,
    JourneyEvent,
    Outcome,
    Rejected,
    Router,
    Skipped,
    flat_router,
    row_builder,
    segment_router,
)
from target_sfmc.settings import STREAM_TYPES, TargetSettings
from target_sfmc.validation import FastJSONSchemaValidator, QuietJSONSchemaValidator

if TYPE_CHECKING:
    from collections.abc import Callable

    import msgspec
    from singer_sdk import Target
    from singer_sdk.sinks.core import BaseJSONSchemaValidator

SYNC_BATCH_ROWS = 10_000
# Async batches send their rows while reading and hold only unfinished requests in memory,
# so a large batch costs no memory; it only moves the point where reading waits for SFMC.
ASYNC_BATCH_ROWS = 500_000
# Sent but unconfirmed async rows kept in memory; enough requests to keep the limiter busy.
MAX_UNFINISHED_ROWS = 64_000
MAX_UNFINISHED_JOBS = 16
FIRST_ASYNC_REQUEST_ROWS = 2_000
_REJECTIONS_LOGGED_PER_BATCH = 5


@dataclass
class LoadingRuntime:
    """What every sink shares: settings, one client, one thread pool, one report."""

    settings: TargetSettings
    client: SfmcClient
    executor: ThreadPoolExecutor
    pipeline: ThreadPoolExecutor
    report: RunReport
    contacts: ContactRegistry
    events: JourneyEventLoader
    batches_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

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
        return cls(
            settings=settings,
            client=client,
            executor=executor,
            # Separate pool: its jobs wait on request jobs, which must never wait on them.
            pipeline=ThreadPoolExecutor(
                max_workers=MAX_UNFINISHED_JOBS, thread_name_prefix="target-sfmc-job"
            ),
            report=RunReport(client.stats, settings.dead_letter_path),
            contacts=ContactRegistry(client, executor),
            events=JourneyEventLoader(client, executor),
        )

    def batch_started(self) -> None:
        """Note that a batch is being loaded (SIGTERM must not emit state now)."""
        with self.lock:
            self.batches_in_flight += 1

    def batch_finished(self) -> None:
        """Note that a batch finished loading, successfully or not."""
        with self.lock:
            self.batches_in_flight -= 1


@dataclass(repr=False)
class _Batch:
    rows: dict[str, dict[tuple[Any, ...], DataExtensionRow]] = field(default_factory=dict)
    events: dict[str, list[JourneyEvent]] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Async mode: jobs already sent while the batch was still being read.
    jobs: list[Future[LoadResult]] = field(default_factory=list)
    # Unfinished jobs with their DE and primary keys, to order jobs that share a key.
    in_flight: list[tuple[Future[LoadResult], str, set[tuple[Any, ...]]]] = field(
        default_factory=list
    )

    def __repr__(self) -> str:
        # The SDK logs the batch context at DEBUG for every record: never show row values.
        rows = sum(len(by_key) for by_key in self.rows.values())
        return f"<batch: {rows} rows pending, {len(self.jobs)} async jobs sent>"


class RuntimeSink(BatchSink):
    """A sink holding the target's shared runtime (client, pools, accounting)."""

    MAX_SIZE_DEFAULT = SYNC_BATCH_ROWS

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: list[str] | None,
    ) -> None:
        """Create the sink.

        Args:
            target: The target (a TargetSfmc, which owns the runtime).
            stream_name: Stream name after stream maps.
            schema: Stream schema.
            key_properties: Stream key properties.
        """
        self.runtime: LoadingRuntime = target.runtime  # type: ignore[attr-defined]
        super().__init__(target, stream_name, schema, key_properties)


class SfmcSink(RuntimeSink):
    """Loads one stream into SFMC; `process_batch` returns only once SFMC confirmed the rows."""

    _send_while_reading = False

    def setup(self) -> None:
        """Build the stream's router; unconfigured streams fail here, at their SCHEMA.

        Raises:
            TargetSfmcError: When the stream has no configuration.
        """
        settings = self.runtime.settings
        stream_name = self.stream_name
        stream = settings.streams.get(stream_name)
        if stream is None:
            raise TargetSfmcError(
                f"Stream '{stream_name}' is not configured: add it under 'streams' with a 'type' "
                f"({', '.join(STREAM_TYPES)}), or set 'ignore_unconfigured_streams' to true."
            )
        if stream.type == "segment" and not settings.identify_data_extension_key:
            self.runtime.report.warn_once(
                stream_name,
                "no-identify-de",
                "Stream '%s' carries Segment messages but no identify_data_extension_key is "
                "set: its identify messages are skipped and counted (unmapped_event).",
                stream_name,
            )
        self.router: Router = (
            segment_router(settings)
            if stream.type == "segment"
            else flat_router(stream, settings, list(self.key_properties))
        )
        self._send_while_reading = settings.use_async_api
        # With the async API, batch_size_rows sizes the requests (see `max_size`).
        self._request_rows_cap = self.batch_size_rows or ASYNC_ROWS_PER_REQUEST
        # A small first request gets SFMC working early and measures the row size.
        self._rows_per_request = min(FIRST_ASYNC_REQUEST_ROWS, self._request_rows_cap)
        self._tally = self.runtime.report.tally(stream_name)
        self.data_extensions = DataExtensionLoader(
            self.runtime.client,
            self.runtime.executor,
            use_async_api=settings.use_async_api,
            async_timeout_seconds=settings.async_timeout_seconds,
            describe=lambda key: f"data extension '{key}' (stream '{stream_name}')",
            on_confirmed=self.runtime.report.note_confirmed,
        )

    @property
    def max_size(self) -> int:
        """Records per batch, the point where reading waits until SFMC confirmed every row.

        With the async API rows are sent while reading, in requests of at most
        ``batch_size_rows`` rows; a batch then only marks where reading waits, so it is kept
        large (state is emitted after a full drain either way).

        Returns:
            The batch size.
        """
        if self._send_while_reading:
            return max(ASYNC_BATCH_ROWS, self.batch_size_rows or 0)
        return super().max_size

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """Use a compiled validator; fall back to the SDK's for schemas it cannot compile.

        Returns:
            The validator, or None when validation is off.
        """
        if not self.validate_schema:
            return None
        try:
            return FastJSONSchemaValidator(self.schema)
        except Exception:  # noqa: BLE001, S110 - the SDK's validator gets its chance next
            pass
        try:
            return QuietJSONSchemaValidator(
                self.schema, validate_formats=self.validate_field_string_format
            )
        except Exception as exc:  # noqa: BLE001 - any schema problem gets the same clear sentence
            raise TargetSfmcError(
                f"The SCHEMA of stream '{self.stream_name}' cannot be used to validate records "
                f"({type(exc).__name__}); fix the schema or set validate_records to false."
            ) from None

    def _validate_and_parse(self, record: dict) -> dict:
        """Validate, then parse the schema's date-like fields (found once per schema).

        Replaces the SDK's per-record schema walk, which costs a quarter of the CPU per
        record, and its error messages, which quote record values.

        Args:
            record: The record.

        Returns:
            The record with date-like strings parsed.
        """
        if self._validator is not None:
            self._validator.validate(record)
        self._dates.parse(record)
        return record

    @cached_property
    def _dates(self) -> DateParser:
        return DateParser(self.schema, self.datetime_error_treatment, self.logger)

    def start_batch(self, context: dict) -> None:
        """Open a new batch.

        Args:
            context: The SDK's batch context.
        """
        context["batch"] = _Batch()

    def process_record(self, record: dict, context: dict) -> None:
        """Map one record and add its rows to the batch (merging duplicate keys).

        Args:
            record: The record (validated, date-times parsed).
            context: The SDK's batch context.
        """
        self.add_outcomes(self.router(record), context)

    def record_lane(self) -> Callable[[msgspec.Raw, dict], bool] | None:
        """The stream's fast lane: map a record's JSON text and add it to the batch.

        Returns:
            ``(raw, context) -> taken`` (False when the record must take the general path,
            which then decides and words any error), or None when this stream's schema or
            type has no lane.
        """
        stream = self.runtime.settings.streams[self.stream_name]
        build_row = row_builder(stream, self.runtime.settings, list(self.key_properties))
        if build_row is None:
            return None
        lane = compile_lane(
            self.schema,
            self.key_properties,
            validate=self._validator is not None,
            user_id_properties=stream.user_id_properties,
            email_property=stream.email_property,
        )
        if lane is None:
            return None
        lane_map, add_outcome, tally = lane.map, self._add_outcome, self._tally

        def take(raw: msgspec.Raw, context: dict) -> bool:
            mapped = lane_map(raw)
            if mapped is None:
                return False
            tally.read += 1
            add_outcome(build_row(*mapped), context["batch"])
            return True

        return take

    def add_outcomes(self, outcomes: list[Outcome], context: dict) -> None:
        """Add one record's outcomes to the batch (merging duplicate keys).

        Args:
            outcomes: What the record maps to.
            context: The SDK's batch context.
        """
        batch: _Batch = context["batch"]
        # Only the reading thread changes this counter: no lock needed per record.
        self._tally.read += 1
        for outcome in outcomes:
            self._add_outcome(outcome, batch)

    def _add_outcome(self, outcome: Outcome, batch: _Batch) -> None:
        if isinstance(outcome, DataExtensionRow):
            rows = batch.rows.get(outcome.data_extension_key)
            if rows is None:
                rows = batch.rows[outcome.data_extension_key] = {}
            primary_key = outcome.primary_key
            existing = rows.get(primary_key)
            if existing is None:
                rows[primary_key] = outcome
                if self._send_while_reading and len(rows) >= self._rows_per_request:
                    self._send_rows(batch, outcome.data_extension_key)
            else:
                # Same result as sequential upserts: later values win, earlier columns stay.
                existing.values = {**existing.values, **outcome.values}
                existing.records += 1
        elif isinstance(outcome, JourneyEvent):
            batch.events.setdefault(outcome.event_definition_key, []).append(outcome)
        elif isinstance(outcome, Skipped):
            batch.skipped.append(outcome)
        else:
            batch.rejected.append(outcome)

    def process_batch(self, context: dict) -> None:
        """Load the batch; return only when SFMC confirmed or refused every row.

        Args:
            context: The SDK's batch context.

        Raises:
            RowsRejectedError: When rows were rejected and ``row_error_policy`` is ``fail``.
        """
        batch: _Batch | None = context.get("batch")
        if batch is None:
            return
        result = LoadResult()
        self.runtime.batch_started()
        try:
            self._load(batch, result)
        except BaseException:
            # Rows SFMC confirmed before the failure stay counted as written in the summary.
            self.runtime.report.count(
                self.stream_name,
                written=result.written,
                merged=result.merged,
                extra_written=result.extra_written,
            )
            raise
        finally:
            self.runtime.batch_finished()
        self._account(batch, result)

    def _send_rows(self, batch: _Batch, key: str) -> None:
        """Send a full async request now; reading goes on while SFMC works.

        Requests run side by side unless they share a primary key with an unfinished one,
        which they then wait for (so a later row for a key still wins). ``process_batch``
        waits for every job before the batch counts as loaded.
        """
        rows_by_key = batch.rows.pop(key)
        keys = set(rows_by_key)
        batch.in_flight = [entry for entry in batch.in_flight if not entry[0].done()]
        earlier = [
            job for job, de, sent in batch.in_flight if de == key and not keys.isdisjoint(sent)
        ]
        self._rows_per_request = min(
            self.data_extensions.rows_per_async_request(), self._request_rows_cap
        )
        job = self.runtime.pipeline.submit(
            self._load_after, earlier, key, list(rows_by_key.values())
        )
        batch.jobs.append(job)
        batch.in_flight.append((job, key, keys))
        unfinished_rows = sum(len(sent) for _, _, sent in batch.in_flight)
        while len(batch.in_flight) > MAX_UNFINISHED_JOBS or unfinished_rows > MAX_UNFINISHED_ROWS:
            oldest, _, sent = batch.in_flight.pop(0)
            oldest.result()  # bounds memory; raises early if SFMC refused rows
            unfinished_rows -= len(sent)

    def _load_after(
        self, earlier: list[Future[LoadResult]], key: str, rows: list[DataExtensionRow]
    ) -> LoadResult:
        for job in earlier:
            job.result()
        return self.data_extensions.load(key, rows)

    def _load(self, batch: _Batch, result: LoadResult) -> None:
        """Load the batch into ``result``, part by part, so a failure keeps what was confirmed."""
        if self._send_while_reading:
            for key in list(batch.rows):
                self._send_rows(batch, key)
            wait_all(batch.jobs, on_result=result.extend)
            return
        for key, rows_by_key in batch.rows.items():
            rows = list(rows_by_key.values())
            rows, refused = self._ensure_contacts(rows)
            result.rejected.extend(refused)
            result.extend(self.data_extensions.load(key, rows))
        for definition_key, events in batch.events.items():
            result.extend(self.runtime.events.load(definition_key, events))

    def _ensure_contacts(
        self, rows: list[DataExtensionRow]
    ) -> tuple[list[DataExtensionRow], list[Rejection]]:
        wanted = {row.contact_key for row in rows if row.contact_key is not None}
        if not wanted:
            return rows, []
        failures = self.runtime.contacts.ensure(wanted)
        if not failures:
            return rows, []
        kept = [row for row in rows if row.contact_key not in failures]
        refused = [
            Rejection(
                row,
                f"contact not created: {failures[row.contact_key].message_for_row}",
                failures[row.contact_key].error_code,
            )
            for row in rows
            if row.contact_key in failures
        ]
        return kept, refused

    def _account(self, batch: _Batch, result: LoadResult) -> None:
        report = self.runtime.report
        stream = self.stream_name
        written, merged, rejected, extra_rejected = result.written, result.merged, 0, 0
        extra_skipped = 0
        letters: list[dict[str, Any]] = []
        for skip in batch.skipped:
            if skip.secondary:
                extra_skipped += 1
            else:
                report.count_skip(stream, skip.reason)
            letters.append(
                report.dead_letter_entry(stream, skip.destination, skip.reason, skip.row)
            )
        messages: list[str] = []
        for refusal in batch.rejected:
            rejected += 1
            messages.append(refusal.message)
            letters.append(
                report.dead_letter_entry(
                    stream, refusal.destination, REJECTED, refusal.row, refusal.message, "mapping"
                )
            )
        for rejection in result.rejected:
            item = rejection.item
            if isinstance(item, DataExtensionRow):
                rejected += item.records
                destination, row = item.data_extension_key, {**item.values, **item.keys}
            else:
                if item.secondary:
                    extra_rejected += 1
                else:
                    rejected += 1
                destination, row = (
                    item.event_definition_key,
                    {"ContactKey": item.contact_key, "Data": item.data},
                )
            messages.append(rejection.message)
            letters.append(
                report.dead_letter_entry(
                    stream, destination, REJECTED, row, rejection.message, rejection.error_code
                )
            )
        report.count(
            stream,
            written=written,
            merged=merged,
            rejected=rejected,
            extra_written=result.extra_written,
            extra_rejected=extra_rejected,
            extra_skipped=extra_skipped,
        )
        report.dead_letter(letters)
        if not messages:
            return
        # SFMC's messages can quote values (a Contact Key, a duplicate key): the log gets
        # them with quoted parts hidden; the dead-letter file keeps them whole.
        for message in messages[:_REJECTIONS_LOGGED_PER_BATCH]:
            self.logger.warning("Row rejected: %s", without_quoted_values(message))
        if not self.runtime.settings.skip_rejected_rows:
            raise RowsRejectedError(
                f"{rejected + extra_rejected} record(s) of stream '{stream}' were rejected "
                f"(first: {without_quoted_values(messages[0])}); "
                "state was not advanced past them. Fix the data or Data Extension, or set "
                "row_error_policy to 'skip'."
            )


class IgnoredStreamSink(RuntimeSink):
    """Counts the records of a stream nobody configured (``ignore_unconfigured_streams``)."""

    def setup(self) -> None:
        """Warn (once) that the stream is skipped."""
        self.runtime.report.warn_once(
            self.stream_name,
            UNCONFIGURED_STREAM,
            "Stream '%s' is not configured; its records are skipped and counted.",
            self.stream_name,
        )

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """Records of an ignored stream are not validated.

        Returns:
            None.
        """
        return None

    def _validate_and_parse(self, record: dict) -> dict:
        """Records of an ignored stream are neither validated nor parsed: they are only counted.

        Args:
            record: The record.

        Returns:
            The record unchanged.
        """
        return record

    def process_record(self, record: dict, context: dict) -> None:
        """Count the record as skipped.

        Args:
            record: The record.
            context: The SDK's batch context.
        """
        report = self.runtime.report
        report.count(self.stream_name, read=1)
        report.count_skip(self.stream_name, UNCONFIGURED_STREAM)
        if report.dead_letters is not None:
            context.setdefault("letters", []).append(
                report.dead_letter_entry(self.stream_name, None, UNCONFIGURED_STREAM, record)
            )

    def process_batch(self, context: dict) -> None:
        """Write the batch's dead letters.

        Args:
            context: The SDK's batch context.
        """
        self.runtime.report.dead_letter(context.get("letters", []))
