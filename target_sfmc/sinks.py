"""Sinks: collect each stream's rows in batches and hand them to SFMC.

The batch itself is in :mod:`target_sfmc.sink_batch`; what happened to each of its records is
counted and dead-lettered by :mod:`target_sfmc.batch_accounting`.

What SFMC stores must equal sending every record on its own, in input order:

- A record for a primary key already in the batch is merged into that row when it changes
  none of the row's values (it only adds columns or repeats them), so the merged row holds
  every value of every record and SFMC checks them all. A record that changes a value goes
  into a later *round* of the batch, loaded after the earlier rounds; a merged row that SFMC
  refuses is sent again record by record (see :mod:`target_sfmc.loading.base`). So a refused
  record is rejected alone and takes no other record's values with it.
- Streams that write the same Data Extension keep input order across streams: before a
  stream adds a row for a key that another stream holds unconfirmed, that stream is drained.
- A deleted record (``_sdc_deleted_at`` with ``hard_delete``) becomes a row to delete; it
  never merges with an upsert of its key, so deletes and upserts of one key keep their order
  through the rounds (see :mod:`target_sfmc.loading.deletes`).
- Streams that enter and leave journeys send each contact's entry events and exits in input
  order (see :mod:`target_sfmc.loading.journey_exit`).

``process_batch`` returns only when SFMC confirmed or refused every row, so the SDK never
emits STATE ahead of unconfirmed rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from singer_sdk.exceptions import InvalidJSONSchema

from target_sfmc.batch_accounting import account_batch
from target_sfmc.column_gate import StreamGates
from target_sfmc.errors import TargetSfmcError
from target_sfmc.fastpath.segment_rows import SegmentRows
from target_sfmc.fastpath.sink import LaneSpec, SegmentLaneSpec
from target_sfmc.loading.asynchronous import AsyncRowLoader
from target_sfmc.loading.deletes import DeletingRowLoader, RowDeleter
from target_sfmc.loading.journey_exit import load_in_order
from target_sfmc.loading.sync import SyncRowLoader
from target_sfmc.mapping import title_case
from target_sfmc.records import (
    DataExtensionRow,
    JourneyEvent,
    JourneyExit,
    LoadResult,
    Outcome,
    Skipped,
)
from target_sfmc.routing import SegmentRouter, StreamRouting, deletes_rows, row_builder
from target_sfmc.settings_schema import STREAM_TYPES
from target_sfmc.sink_base import RuntimeSink
from target_sfmc.sink_batch import Batch
from target_sfmc.validation import FastJSONSchemaValidator, QuietJSONSchemaValidator

if TYPE_CHECKING:
    from singer_sdk import Target
    from singer_sdk.sinks.core import BaseJSONSchemaValidator

    from target_sfmc.loading.base import RowLoader
    from target_sfmc.settings import StreamSettings, TargetSettings


class SfmcSink(RuntimeSink):
    """Loads one stream into SFMC; `process_batch` returns only once SFMC confirmed the rows."""

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: list[str] | None,
    ) -> None:
        """Create the sink and know its destinations (read, created or extended at its SCHEMA).

        Done here rather than in ``setup``, where the SDK would add a line of its own to the
        one-sentence error of a missing Data Extension or refused credentials.

        Args:
            target: The target (a TargetSfmc, which owns the runtime).
            stream_name: Stream name after stream maps.
            schema: Stream schema.
            key_properties: Stream key properties.
        """
        super().__init__(target, stream_name, schema, key_properties)
        runtime = self.runtime
        stream = runtime.settings.streams.get(stream_name)
        self._gates = (
            runtime.data_extensions.prepare(
                stream_name, stream, self.schema, list(self.key_properties), runtime.report
            )
            if stream is not None
            else StreamGates()
        )

    def setup(self) -> None:
        """Build the stream's router and pick its loader; unconfigured streams fail here.

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
        self.routing = StreamRouting.of(stream, settings, list(self.key_properties))
        self._tally = self.runtime.report.tally(stream_name)
        for name in self.schema.get("properties", {}):
            if not title_case(name):
                self.runtime.report.ignore_attribute(
                    stream_name, repr(name), "its name has no letter or digit to name a column"
                )

        def describe(key: str) -> str:
            return f"data extension '{key}' (stream '{stream_name}')"

        runtime = self.runtime
        self.loader: RowLoader = (
            AsyncRowLoader(
                runtime.client,
                runtime.executor,
                runtime.pipeline,
                rows_per_request=self.batch_size_rows,
                timeout_seconds=settings.async_timeout_seconds,
                describe=describe,
                on_confirmed=runtime.report.note_confirmed,
            )
            if settings.use_async_api
            else SyncRowLoader(
                runtime.client,
                runtime.executor,
                runtime.pipeline,
                runtime.contacts,
                describe=describe,
                on_confirmed=runtime.report.note_confirmed,
            )
        )
        if deletes_rows(stream, settings):
            deleter = RowDeleter(
                runtime.client,
                runtime.executor,
                describe=describe,
                on_confirmed=runtime.report.note_confirmed,
            )
            self.loader = DeletingRowLoader(self.loader, deleter)
        self._journey_in_order = bool(stream.journey_key)
        self._mirror = runtime.mirror
        self.register_mirror(stream)
        # Journey events and exits go out when the batch is full: a batch as large as a row
        # stream's would hold them (and STATE) back for long.
        self._records_per_batch = (
            self.batch_size_rows or self.MAX_SIZE_DEFAULT
            if _sends_journey_calls(stream, settings)
            else self.loader.records_per_batch(self.batch_size_rows)
        )
        self.current_batch: Batch | None = None
        self._shared_destinations = self.runtime.shared_destinations  # the run's one set
        for key in _destinations(stream, settings):
            self.runtime.add_writer(key, self)

    def activate_version(self, new_version: int) -> None:
        """``ACTIVATE_VERSION``: the stream was sent in full; mirror its Data Extension now.

        Every row of the Data Extension is confirmed first (this stream's and any other's).

        Args:
            new_version: The version the tap activates.
        """
        del new_version
        found = self.mirror_to_activate()
        if found is None:
            return
        mirror, key = found
        for writer in list(self.runtime.writers.get(key, ())):
            self.runtime.drain(writer)
        mirror.mirror(key, self.stream_name)

    @property
    def max_size(self) -> int:
        """Records per batch, the point where reading waits until SFMC confirmed every row.

        Returns:
            The batch size the stream's loader asks for.
        """
        return self._records_per_batch

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """Use a compiled validator; fall back to the SDK's for schemas it cannot compile.

        Returns:
            The validator, or None when validation is off.

        Raises:
            TargetSfmcError: When no validator can use the schema.
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
        except InvalidJSONSchema as exc:  # its message names the property, never a value
            raise TargetSfmcError(
                f"The SCHEMA of stream '{self.stream_name}' cannot be used to validate records "
                f"({exc}); fix the schema or set validate_records to false."
            ) from None
        except Exception as exc:  # noqa: BLE001 - any schema problem gets the same clear sentence
            raise TargetSfmcError(
                f"The SCHEMA of stream '{self.stream_name}' cannot be used to validate records "
                f"({type(exc).__name__}); fix the schema or set validate_records to false."
            ) from None

    def start_batch(self, context: dict) -> None:
        """Open a new batch.

        Args:
            context: The SDK's batch context.
        """
        self.current_batch = context["batch"] = Batch(self.loader.open_batch())

    def process_record(self, record: dict, context: dict) -> None:
        """Map one record and add its outcomes to the batch.

        Args:
            record: The record (validated, date-times parsed).
            context: The SDK's batch context.
        """
        batch: Batch = context["batch"]
        # Only the reading thread changes this counter: no lock needed per record.
        self._tally.read += 1
        for outcome in self.routing.outcomes(record, deleted=self.take_record_deleted()):
            self._add_outcome(outcome, batch)

    def lane_spec(self) -> LaneSpec | SegmentLaneSpec | None:
        """How a lane of this stream builds and keeps rows (identify, track, Segment format).

        Returns:
            The spec, or None for streams whose rows need more of the record.
        """
        stream = self.runtime.settings.streams[self.stream_name]
        if isinstance(self.routing.route, SegmentRouter):
            return self._segment_lane_spec(self.routing.route)
        build_row = row_builder(
            stream, self.runtime.settings, list(self.key_properties), contact_key_set=True
        )
        if build_row is None:
            return None
        # The decode checks what it can of each value against its column (lengths, ranges).
        gate = self._gates.rows.get(stream.data_extension_key or "")
        tally, add_outcome, add_admitted = self._tally, self._add_outcome, self._add_admitted
        admit = None if gate is None else gate.admit_row

        def keep(outcome: Outcome, context: dict) -> None:
            tally.read += 1
            if admit is not None and type(outcome) is DataExtensionRow:
                # The stream's rows all go to its gate's destination.
                add_admitted(admit(outcome), context["batch"])
            else:
                add_outcome(outcome, context["batch"])

        constraints = {} if gate is None else gate.lane_constraints(self.schema)
        return LaneSpec(
            build_row,
            stream.user_id_properties,
            stream.email_property,
            keep,
            declines_deleted=self.routing.deleted is not None,
            constraints=constraints,
            on_lane=None if gate is None else gate.trust_lane,
        )

    def _segment_lane_spec(self, router: SegmentRouter) -> SegmentLaneSpec:
        """How a lane of a Segment-format stream routes messages and keeps their outcomes."""
        tally, add_outcome, add_row = self._tally, self._add_outcome, self._add_row

        def keep_row(row: DataExtensionRow, context: dict) -> None:
            tally.read += 1
            add_row(row, context["batch"])  # built past its gate

        def keep(outcomes: list[Outcome], context: dict) -> None:
            tally.read += 1
            batch = context["batch"]
            for outcome in outcomes:
                add_outcome(outcome, batch)

        common_rows = SegmentRows(router, self._gates)
        return SegmentLaneSpec(router.route_fields, common_rows.row, keep_row, keep)

    def _add_outcome(self, outcome: Outcome, batch: Batch) -> None:
        self._add_admitted(self._gates.admit(outcome), batch)

    def _add_admitted(self, outcome: Outcome, batch: Batch) -> None:
        """Add an outcome that passed its gate to the batch."""
        if isinstance(outcome, DataExtensionRow):
            self._add_row(outcome, batch)
        elif isinstance(outcome, JourneyEvent) and not self._journey_in_order:
            batch.events.setdefault(outcome.event_definition_key, []).append(outcome)
        elif isinstance(outcome, (JourneyEvent, JourneyExit)):
            batch.journey.append(outcome)
        elif isinstance(outcome, Skipped):
            batch.skipped.append(outcome)
        else:
            batch.refused.append(outcome)

    def _add_row(self, row: DataExtensionRow, batch: Batch) -> None:
        """Add a row that passed its gate to the batch (merged with a pending one, or later)."""
        key = row.data_extension_key
        primary_key = row.primary_key
        if self._mirror is not None:
            self._mirror.note(row)
        if key in self._shared_destinations:
            self._drain_writers_holding(key, primary_key)
        rows = batch.rows.get(key)
        if rows is None:
            rows = batch.rows[key] = {}
        if primary_key not in rows and key not in batch.later:
            rows[primary_key] = row  # the common case: a key new to the batch
            if len(rows) >= batch.load.send_at:
                batch.send(key)
        else:
            self._add_repeated_key(row, primary_key, batch)

    def _add_repeated_key(
        self, outcome: DataExtensionRow, primary_key: tuple[Any, ...], batch: Batch
    ) -> None:
        """Merge a row into the key's last pending row, or start a later round for it."""
        key = outcome.data_extension_key
        rounds = [batch.rows[key], *batch.later.get(key, ())]
        last = next((i for i in range(len(rounds) - 1, -1, -1) if primary_key in rounds[i]), None)
        if last is None:
            rounds[0][primary_key] = outcome
            if len(rounds[0]) >= batch.load.send_at:
                batch.send(key)
            return
        existing = rounds[last][primary_key]
        if existing.merge(outcome):
            return
        if last + 1 == len(rounds):
            batch.later.setdefault(key, []).append({})
        batch.later[key][last][primary_key] = outcome

    def _drain_writers_holding(self, key: str, primary_key: tuple[Any, ...]) -> None:
        """Drain every other stream holding an unconfirmed row for this key (input order)."""
        for writer in self.runtime.writers[key]:
            if writer is not self and writer.holds(key, primary_key):
                self.runtime.drain(writer)

    def holds(self, key: str, primary_key: tuple[Any, ...]) -> bool:
        """Tell whether this stream's current batch has an unconfirmed row for the key.

        Args:
            key: Data Extension key.
            primary_key: The row's primary key.

        Returns:
            True when the stream must be drained before another adds a row for the key.
        """
        return self.current_batch is not None and self.current_batch.holds(key, primary_key)

    def process_batch(self, context: dict) -> None:
        """Load the batch; return only when SFMC confirmed or refused every row.

        Args:
            context: The SDK's batch context.
        """
        batch: Batch | None = context.get("batch")
        if batch is None:
            return
        if batch is self.current_batch:
            self.current_batch = None
        result = LoadResult()
        self.runtime.batch_started()
        try:
            batch.load.finish(batch.rounds(), result)
            for definition_key, events in batch.events.items():
                result.extend(self.runtime.events.load(definition_key, events))
            if batch.journey:
                runtime = self.runtime
                result.extend(load_in_order(batch.journey, runtime.events, runtime.exits))
        except BaseException:
            # Rows SFMC confirmed before the failure stay counted as written in the summary.
            self.runtime.report.count(
                self.stream_name,
                written=result.written,
                merged=result.merged,
                deleted=result.deleted,
                extra_written=result.extra_written,
            )
            raise
        finally:
            self.runtime.batch_finished()
        if self._mirror is not None:
            self._mirror.note_refused(result.rejected)
        account_batch(
            batch,
            result,
            stream=self.stream_name,
            report=self.runtime.report,
            skip_rejected_rows=self.runtime.settings.skip_rejected_rows,
            logger=self.logger,
        )


def _sends_journey_calls(stream: StreamSettings, settings: TargetSettings) -> bool:
    """Whether a stream's records may become entry events or journey exits."""
    return (
        stream.type == "api_event"
        or bool(stream.journey_key)
        or (stream.type == "segment" and bool(settings.api_events))
    )


def _destinations(stream: StreamSettings, settings: TargetSettings) -> set[str]:
    """The Data Extensions a stream writes rows to."""
    if stream.type == "segment":
        keys = {event.data_extension_key for event in settings.conversion_events.values()}
        if settings.identify_data_extension_key:
            keys.add(settings.identify_data_extension_key)
        return keys
    return {stream.data_extension_key} if stream.data_extension_key else set()
