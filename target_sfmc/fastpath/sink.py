"""The sink side of the fast path: one validation-and-parsing step, and a stream's lane."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from singer_sdk.exceptions import MissingKeyPropertiesError
from singer_sdk.sinks import BatchSink

from target_sfmc.dates import DateParser, UnresolvableReferenceError
from target_sfmc.errors import TargetSfmcError
from target_sfmc.fastpath.lanes import compile_lane
from target_sfmc.fastpath.segment_lane import compile_segment_lane
from target_sfmc.routing import routed_fields

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import msgspec

    from target_sfmc.fastpath.lanes import RecordLane
    from target_sfmc.records import Attributes, DataExtensionRow, Outcome


def is_deleted(marker: Any) -> bool:
    """Tell whether a record's ``_sdc_deleted_at`` marks it deleted (any value but null or "").

    Args:
        marker: The ``_sdc_deleted_at`` value (None when absent).

    Returns:
        True when the record is marked deleted.
    """
    return marker is not None and marker != ""


@dataclass(frozen=True)
class LaneSpec:
    """What a sink tells the fast path so that a lane can build and keep its rows."""

    build_row: Callable[[str | None, Attributes], Outcome]
    user_id_properties: Sequence[str]
    email_property: str
    keep: Callable[[Outcome, dict], None]  # adds the record's outcome to the batch context
    # Records marked deleted (``_sdc_deleted_at``) load differently: the lane leaves them.
    declines_deleted: bool = False
    # Property -> (str or int, msgspec.Meta) its values must meet to stay in the lane.
    constraints: Mapping[str, tuple[type, msgspec.Meta]] = field(default_factory=dict)
    # Told the lane once it is built (its row type and the names its decode constrained).
    on_lane: Callable[[RecordLane], None] | None = None


@dataclass(frozen=True)
class SegmentLaneSpec:
    """What a Segment-format sink tells the fast path so that a lane can route its messages."""

    # The routed fields of a message -> its outcomes (None: the whole message is needed).
    route_fields: Callable[[Mapping[str, Any]], list[Outcome] | None]
    # The routed values of a message -> its one row, built past its gate (None: route it).
    row_of: Callable[[Sequence[Any]], DataExtensionRow | None]
    keep_row: Callable[[DataExtensionRow, dict], None]  # adds such a row to the batch
    keep: Callable[[list[Outcome], dict], None]  # adds a message's outcomes to the batch


@dataclass(frozen=True)
class SinkLane:
    """A stream's lane: its record Struct, and what takes a record decoded into it."""

    decode: Callable[[msgspec.Raw | bytes], Any]  # raises msgspec.DecodeError
    record_type: type
    # (decoded record, batch context) -> taken; False: the general path must take it.
    take: Callable[[Any, dict], bool]


class FastPathSink(BatchSink):
    """A BatchSink whose records are validated and parsed in one step and may have a lane.

    ``record_deleted`` tells :meth:`process_record` whether the record it gets carried a
    ``_sdc_deleted_at`` (the SDK takes the property out of the record before that step,
    unless ``add_record_metadata`` is on).
    """

    record_deleted: bool = False

    def _remove_sdc_metadata_from_record(self, record: dict) -> None:
        """The SDK's hook: note whether the record is marked deleted, then drop the metadata.

        Args:
            record: The record.
        """
        self.record_deleted = is_deleted(record.get("_sdc_deleted_at"))
        super()._remove_sdc_metadata_from_record(record)

    def take_record_deleted(self) -> bool:
        """Whether the record about to be processed was marked deleted (the mark is reset).

        Returns:
            True when it carried a ``_sdc_deleted_at``.
        """
        if self.record_deleted:
            self.record_deleted = False
            return True
        return False

    def _add_sdc_metadata_to_record(self, record: dict, message: dict, context: dict) -> None:
        """The SDK's hook: note whether the record is marked deleted, then add the metadata.

        Args:
            record: The record.
            message: The RECORD message.
            context: The batch context.
        """
        self.record_deleted = is_deleted(record.get("_sdc_deleted_at"))
        super()._add_sdc_metadata_to_record(record, message, context)

    def _validate_and_parse(self, record: dict) -> dict:
        """The SDK's hook: validate, then parse the schema's date-like fields.

        Args:
            record: The record.

        Returns:
            The record with date-like strings parsed.
        """
        self.validate_and_parse(record)
        return record

    def validate_and_parse(self, record: dict[str, Any]) -> None:
        """Validate a record and parse its date-like fields (found once per schema).

        Replaces the SDK's per-record schema walk, and its error messages, which quote
        record values.

        Args:
            record: The record (changed in place).
        """
        if self._validator is not None:
            self._validator.validate(record)
        self.date_parser.parse(record)

    def _singer_validate_message(self, record: dict) -> None:
        """The SDK's hook: a record must carry its stream's key properties; name the missing.

        Args:
            record: The record.

        Raises:
            MissingKeyPropertiesError: Naming the stream and the missing properties.
        """
        missing = [name for name in self.key_properties if name not in record]
        if missing:
            names = ", ".join(f"'{name}'" for name in missing)
            raise MissingKeyPropertiesError(
                f"a record of stream '{self.stream_name}' is missing its key "
                f"propert{'ies' if len(missing) > 1 else 'y'} {names}."
            )

    @cached_property
    def date_parser(self) -> DateParser:
        """The stream's date-like fields, read from its schema once.

        Raises:
            TargetSfmcError: When the schema cannot tell which fields hold dates.
        """
        try:
            return DateParser(self.schema, self.datetime_error_treatment, self.logger)
        except UnresolvableReferenceError as exc:
            raise TargetSfmcError(
                f"The SCHEMA of stream '{self.stream_name}' cannot be used: {exc}"
            ) from None

    def lane_spec(self) -> LaneSpec | SegmentLaneSpec | None:
        """How this stream's lane builds and keeps rows; None: the stream has no lane.

        Returns:
            None here; sinks with lanes override this.
        """
        return None

    def record_lane(self) -> SinkLane | None:
        """The stream's lane: map a decoded record and add it to the batch.

        Returns:
            The lane (its ``take`` returns False when the record must take the general path,
            which then decides and words any error), or None when this stream's schema or
            settings allow no lane.
        """
        spec = self.lane_spec()
        if spec is None:
            return None
        if isinstance(spec, SegmentLaneSpec):
            return self._segment_lane(spec)
        lane = compile_lane(
            self.schema,
            self.key_properties,
            validate=self._validator is not None,
            user_id_properties=spec.user_id_properties,
            email_property=spec.email_property,
            declines_deleted=spec.declines_deleted,
            constraints=spec.constraints,
        )
        if lane is None:
            return None
        if spec.on_lane is not None:
            spec.on_lane(lane)
        lane_map, build_row, keep = lane.map_decoded, spec.build_row, spec.keep

        def take(record: Any, context: dict) -> bool:
            mapped = lane_map(record)
            if mapped is None:
                return False
            keep(build_row(*mapped), context)
            return True

        return SinkLane(lane.decode, lane.record_type, take)

    def _segment_lane(self, spec: SegmentLaneSpec) -> SinkLane | None:
        """The lane of a Segment-format stream (see :meth:`record_lane`)."""
        lane = compile_segment_lane(
            self.schema,
            self.key_properties,
            validate=self._validator is not None,
            route=spec.route_fields,
        )
        if lane is None:
            return None
        routed_of, outcomes_of = lane.routed_of, lane.outcomes_of
        row_of, keep_row, keep = spec.row_of, spec.keep_row, spec.keep

        def take(message: Any, context: dict) -> bool:
            values = routed_of(message)
            if values is None:
                return False
            row = row_of(values)
            if row is not None:
                keep_row(row, context)
                return True
            outcomes = outcomes_of(routed_fields(values))
            if outcomes is None:
                return False
            keep(outcomes, context)
            return True

        return SinkLane(lane.decode, lane.record_type, take)
