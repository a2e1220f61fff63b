"""Which SFMC destination each record goes to, and with which row. No I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from target_sfmc.mapping import (
    CONTACT_KEY,
    UUID_KEY,
    MappingError,
    contact_key,
    first_present,
    is_mapping,
    map_attributes,
    primary_key_values,
    record_uuid,
    segment_email,
    title_case,
)
from target_sfmc.records import (
    MISSING_IDENTIFIER,
    UNMAPPED_EVENT,
    UNSUPPORTED_TYPE,
    DataExtensionRow,
    JourneyEvent,
    JourneyExit,
    MappingRefusal,
    Outcome,
    Skipped,
    key_value_folded,
)
from target_sfmc.settings_schema import DEFAULT_MESSAGE_ID_PROPERTIES, DEFAULT_USER_ID_PROPERTIES

if TYPE_CHECKING:
    from target_sfmc.records import Attributes
    from target_sfmc.settings import StreamSettings, TargetSettings


Router = Callable[[Mapping[str, Any]], list[Outcome]]


def _message_id(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    return str(value).strip() or None


def _identify_row(
    de_key: str | None,
    ck: str | None,
    attributes: Attributes,
    *,
    create_contact: bool,
    contact_key_set: bool = False,
) -> Outcome:
    if ck is None:
        return Skipped(MISSING_IDENTIFIER, attributes, de_key)
    if de_key is None:
        return Skipped(UNMAPPED_EVENT, attributes, None)
    if not contact_key_set:
        attributes[CONTACT_KEY] = ck
    return DataExtensionRow(
        de_key,
        {CONTACT_KEY: ck},
        attributes,
        ck if create_contact else None,
        known_primary_key=(key_value_folded(ck),),
    )


def _track_row(
    de_key: str,
    ck: str | None,
    attributes: Attributes,
    primary_keys: tuple[str, ...],
    *,
    uuid_key: bool,
    message_id: Any,
    record: Mapping[str, Any],
    contact_key_set: bool = False,
) -> Outcome:
    if ck is not None and not contact_key_set:
        attributes[CONTACT_KEY] = ck
    if uuid_key:
        key_value = _message_id(message_id) or record_uuid(record)
        attributes[UUID_KEY] = key_value
        return DataExtensionRow(de_key, {UUID_KEY: key_value}, attributes)
    if ck is None and CONTACT_KEY in primary_keys:
        return Skipped(MISSING_IDENTIFIER, attributes, de_key)
    try:
        keys = primary_key_values(attributes, primary_keys)
    except MappingError as exc:
        return MappingRefusal(str(exc), attributes, de_key)
    return DataExtensionRow(de_key, keys, attributes)


def _audience_row(stream: StreamSettings, ck: str | None, record: Mapping[str, Any]) -> Outcome:
    de_key = stream.data_extension_key or ""
    audience = record.get(stream.audience_property)
    member = record.get(stream.member_property)
    if ck is None:
        return Skipped(MISSING_IDENTIFIER, {}, de_key)
    if not isinstance(audience, str) or not title_case(audience):
        return MappingRefusal(
            f"the record has no audience name in '{stream.audience_property}'",
            {CONTACT_KEY: ck},
            de_key,
        )
    if isinstance(member, str) and member.strip().lower() in {"true", "false"}:
        member = member.strip().lower() == "true"
    if not isinstance(member, bool):
        return MappingRefusal(
            f"the record's '{stream.member_property}' is not a boolean",
            {CONTACT_KEY: ck},
            de_key,
        )
    values = {CONTACT_KEY: ck, title_case(audience): member}
    return DataExtensionRow(de_key, {CONTACT_KEY: ck}, values)


def _audience_outcomes(
    stream: StreamSettings, ck: str | None, record: Mapping[str, Any]
) -> list[Outcome]:
    """The audience row; with a journey, also the entry event (joined) or the exit (left)."""
    row = _audience_row(stream, ck, record)
    if not stream.journey_key or not isinstance(row, DataExtensionRow) or ck is None:
        return [row]
    if row.values.get(title_case(record[stream.audience_property])) is True:
        event = JourneyEvent(stream.event_definition_key or "", ck, dict(row.values))
        event.secondary = True
        return [row, event]
    return [row, JourneyExit(stream.journey_key, ck, secondary=True)]


RowBuilder = Callable[[str | None, "Attributes"], Outcome]


def _track_keys(stream: StreamSettings, key_properties: list[str]) -> tuple[str, ...]:
    """Primary keys of a track stream: configured, else the SCHEMA's, else Contact Key."""
    if stream.primary_keys:
        return stream.primary_keys
    return tuple(title_case(k) for k in key_properties) if key_properties else (CONTACT_KEY,)


def track_primary_keys(stream: StreamSettings, key_properties: list[str]) -> tuple[str, ...]:
    """Primary keys of a flat track stream's rows (its Uuid key aside).

    Args:
        stream: The stream's settings.
        key_properties: The stream's ``key_properties`` from its SCHEMA.

    Returns:
        The configured keys, else the SCHEMA's key properties in Title Case, else Contact Key.
    """
    return _track_keys(stream, key_properties)


def row_builder(
    stream: StreamSettings,
    settings: TargetSettings,
    key_properties: list[str],
    *,
    contact_key_set: bool = False,
) -> RowBuilder | None:
    """The row of a flat identify or track stream, from its Contact Key and attributes.

    Args:
        stream: The stream's settings.
        settings: The target settings.
        key_properties: The stream's ``key_properties`` from its SCHEMA.
        contact_key_set: The attributes already hold the Contact Key, when there is one
            (a lane's rows).

    Returns:
        ``(contact_key, attributes) -> outcome``, or None for streams whose rows need more
        of the record (audiences, API events, Uuid primary keys).
    """
    if stream.type == "identify":
        de_key, create_contact = stream.data_extension_key, settings.create_contacts

        def identify(ck: str | None, attributes: Attributes) -> Outcome:
            return _identify_row(
                de_key,
                ck,
                attributes,
                create_contact=create_contact,
                contact_key_set=contact_key_set,
            )

        return identify
    if stream.type == "track" and not stream.uuid_primary_key:
        track_de_key = stream.data_extension_key or ""
        track_keys = _track_keys(stream, key_properties)

        def track(ck: str | None, attributes: Attributes) -> Outcome:
            return _track_row(
                track_de_key,
                ck,
                attributes,
                track_keys,
                uuid_key=False,
                message_id=None,
                record={},
                contact_key_set=contact_key_set,
            )

        return track
    return None


def flat_router(
    stream: StreamSettings, settings: TargetSettings, key_properties: list[str]
) -> Router:
    """Build the router of a flat stream (identify, track, api_event, audience).

    Args:
        stream: The stream's settings.
        settings: The target settings.
        key_properties: The stream's ``key_properties`` from its SCHEMA.

    Returns:
        A function mapping one record to its outcomes.
    """
    track_keys = _track_keys(stream, key_properties)

    user_id_properties = stream.user_id_properties
    email_property = stream.email_property
    build_row = row_builder(stream, settings, key_properties)

    def route(record: Mapping[str, Any]) -> list[Outcome]:
        ck = contact_key(*map(record.get, user_id_properties), record.get(email_property))
        if stream.type == "audience":
            return _audience_outcomes(stream, ck, record)
        # map_attributes drops nested objects, so the context object itself never becomes a column.
        attributes = map_attributes(record, record.get("context"))
        if build_row is not None:
            return [build_row(ck, attributes)]
        if stream.type == "track":
            return [
                _track_row(
                    stream.data_extension_key or "",
                    ck,
                    attributes,
                    track_keys,
                    uuid_key=stream.uuid_primary_key,
                    message_id=first_present(record, stream.message_id_properties),
                    record=record,
                )
            ]
        if ck is None:
            return [Skipped(MISSING_IDENTIFIER, attributes, stream.event_definition_key)]
        return [JourneyEvent(stream.event_definition_key or "", ck, attributes)]

    return route


def _deletion(outcome: Outcome) -> Outcome:
    if isinstance(outcome, DataExtensionRow):
        keys = outcome.keys
        return DataExtensionRow(outcome.data_extension_key, keys, dict(keys), delete=True)
    return outcome


def deleted_record_router(
    stream: StreamSettings, settings: TargetSettings, route: Router
) -> Router | None:
    """How a record marked deleted (``_sdc_deleted_at``) is loaded, when not like any other.

    - identify and track streams with ``hard_delete``: the record's row is deleted (a Contact
      is never deleted);
    - audience streams with ``hard_delete``: the membership ends (the column becomes false
      and, with a journey, the contact exits it);
    - api_event streams with ``exit_on_delete``: the contact exits ``journey_key`` instead of
      entering.

    Args:
        stream: The stream's settings.
        settings: The target settings.
        route: The stream's router.

    Returns:
        The router of deleted records, or None when they load like any other record.
    """
    if stream.type == "api_event" and stream.exit_on_delete and stream.journey_key:
        journey = stream.journey_key

        def leave_journey(record: Mapping[str, Any]) -> list[Outcome]:
            return [
                JourneyExit(journey, outcome.contact_key)
                if isinstance(outcome, JourneyEvent)
                else outcome
                for outcome in route(record)
            ]

        return leave_journey
    if not settings.hard_delete:
        return None
    if deletes_rows(stream, settings):

        def delete(record: Mapping[str, Any]) -> list[Outcome]:
            return [_deletion(outcome) for outcome in route(record)]

        return delete
    if stream.type == "audience":
        member = stream.member_property

        def leave_audience(record: Mapping[str, Any]) -> list[Outcome]:
            return route({**record, member: False})

        return leave_audience
    return None


def key_columns(stream: StreamSettings, key_properties: list[str]) -> tuple[str, ...]:
    """The primary-key columns of the Data Extension an identify or track stream writes.

    Args:
        stream: The stream's settings.
        key_properties: The stream's ``key_properties`` from its SCHEMA.

    Returns:
        Column names, as the stream's rows name them.
    """
    if stream.type == "track":
        return (UUID_KEY,) if stream.uuid_primary_key else _track_keys(stream, key_properties)
    return (CONTACT_KEY,)


def deletes_rows(stream: StreamSettings, settings: TargetSettings) -> bool:
    """Tell whether the stream's deleted records delete their rows (``hard_delete``).

    Args:
        stream: The stream's settings.
        settings: The target settings.

    Returns:
        True for identify and track streams when ``hard_delete`` is on.
    """
    return settings.hard_delete and stream.type in {"identify", "track"}


# The fields of a Segment message its routing reads (a lane decodes these and no others).
SEGMENT_ROUTED_FIELDS = (
    "type",
    *DEFAULT_USER_ID_PROPERTIES,
    *DEFAULT_MESSAGE_ID_PROPERTIES,
    "event",
    "traits",
    "properties",
    "context",
)
# Where each routed field is in a lane's routed values (UNSET: left out of the fields, as a
# field the message lacks).
ROUTED_AT = {name: position for position, name in enumerate(SEGMENT_ROUTED_FIELDS)}


def routed_fields(values: Sequence[Any]) -> dict[str, Any]:
    """A message's routed fields by name, from their values (see :data:`ROUTED_AT`).

    Args:
        values: One value per routed field.

    Returns:
        The fields the message has.
    """
    return {
        name: value
        for name, value in zip(SEGMENT_ROUTED_FIELDS, values, strict=True)
        if value is not UNSET
    }


@dataclass(frozen=True)
class SegmentRowPlan:
    """The one Data Extension row some Segment messages become, and what it is made of."""

    data_extension_key: str
    # The message field whose attributes (with the context's) fill the row.
    attributes_field: str
    # The row's key columns (the Contact Key among them for identify rows).
    primary_keys: tuple[str, ...]
    # The row's Contact must exist before it (identify rows with ``create_contacts``).
    create_contact: bool = False


def _message_type(message: Mapping[str, Any]) -> str:
    return str(message.get("type") or "").lower()


def _event_name(message: Mapping[str, Any]) -> str:
    """A track message's event, as conversion and API events are looked up."""
    return str(message.get("event") or "").strip().casefold()


class _WholeMessageNeeded(Exception):  # noqa: N818 - a signal, not an error
    """The outcome of a message depends on more than its routed fields."""


class SegmentRouter:
    """Routes Segment-format messages: identify, track to conversion DEs and API events.

    One set of rules for a whole message (the general path, :meth:`__call__`) and for the
    routed fields a lane decoded (:meth:`route_fields`), which declines the messages whose
    outcome carries the whole message (skipped types and events, a Uuid key made from the
    message).
    """

    def __init__(self, settings: TargetSettings) -> None:
        """Keep the settings the rules read.

        Args:
            settings: The target settings.
        """
        self._identify_key = settings.identify_data_extension_key
        self._create_contacts = settings.create_contacts
        self._conversions = settings.conversion_events
        self._api_events = settings.api_events
        self._identify_plan = (
            None
            if self._identify_key is None
            else SegmentRowPlan(
                self._identify_key, "traits", (CONTACT_KEY,), create_contact=self._create_contacts
            )
        )
        # Track events loaded into a conversion Data Extension only, keyed by their columns.
        self._conversion_plans = {
            event: SegmentRowPlan(
                conversion.data_extension_key, "properties", conversion.primary_keys
            )
            for event, conversion in self._conversions.items()
            if event not in self._api_events and not conversion.uuid_primary_key
        }

    def __call__(self, message: Mapping[str, Any]) -> list[Outcome]:
        """Map one Segment message to its outcomes.

        Args:
            message: The message (validated, date-times parsed).

        Returns:
            Its outcomes.
        """
        return self._route(message, message)

    def route_fields(self, fields: Mapping[str, Any]) -> list[Outcome] | None:
        """Map a message from its routed fields (:data:`SEGMENT_ROUTED_FIELDS`) alone.

        Args:
            fields: The message's routed fields, as the general path would see them.

        Returns:
            The outcomes the whole message would have, or None when they would carry more
            of it than these fields.
        """
        try:
            return self._route(fields, None)
        except _WholeMessageNeeded:
            return None

    def contact_key_of(self, message: Mapping[str, Any]) -> str | None:
        """The Contact Key of a message: its user id, else its email (see :func:`segment_email`).

        Args:
            message: The message, or its routed fields.

        Returns:
            The Contact Key, or None when the message has neither.
        """
        # The email is looked for only when no user id gives a Contact Key.
        ck = contact_key(*map(message.get, DEFAULT_USER_ID_PROPERTIES))
        return contact_key(segment_email(message)) if ck is None else ck

    def row_plan(self, message: Mapping[str, Any]) -> SegmentRowPlan | None:
        """Where a message's one Data Extension row goes, when it becomes exactly one row.

        An identify message becomes one row of the Identify Data Extension; a track message
        of a conversion event that is no API event, and whose rows are not keyed by a Uuid,
        one row of the event's Data Extension.

        Args:
            message: The message, or its routed fields.

        Returns:
            The plan, or None for any other message.
        """
        kind = _message_type(message)
        if kind == "identify":
            return self._identify_plan
        if kind == "track":
            return self._conversion_plans.get(_event_name(message))
        return None

    def _route(self, message: Mapping[str, Any], whole: Mapping[str, Any] | None) -> list[Outcome]:
        kind = _message_type(message)
        ck = self.contact_key_of(message)
        context = message.get("context")
        if kind == "identify":
            traits = message.get("traits")
            attributes = map_attributes(traits if is_mapping(traits) else {}, context)
            return [
                _identify_row(
                    self._identify_key, ck, attributes, create_contact=self._create_contacts
                )
            ]
        if kind != "track":
            return [Skipped(UNSUPPORTED_TYPE, dict(_whole(whole)), None)]
        event = _event_name(message)
        conversion = self._conversions.get(event)
        definition = self._api_events.get(event)
        if conversion is None and definition is None:
            return [Skipped(UNMAPPED_EVENT, dict(_whole(whole)), None)]
        properties = message.get("properties")
        attributes = map_attributes(properties if is_mapping(properties) else {}, context)
        outcomes: list[Outcome] = []
        if conversion is not None:
            message_id = first_present(message, DEFAULT_MESSAGE_ID_PROPERTIES)
            if conversion.uuid_primary_key and _message_id(message_id) is None:
                _whole(whole)  # the Uuid key is made from the whole message
            row_attributes = dict(attributes) if definition is not None else attributes
            outcomes.append(
                _track_row(
                    conversion.data_extension_key,
                    ck,
                    row_attributes,
                    conversion.primary_keys,
                    uuid_key=conversion.uuid_primary_key,
                    message_id=message_id,
                    record=whole if whole is not None else {},
                )
            )
        if definition is not None:
            secondary = bool(outcomes)
            if ck is None:
                outcomes.append(
                    Skipped(MISSING_IDENTIFIER, attributes, definition, secondary=secondary)
                )
            else:
                outcomes.append(JourneyEvent(definition, ck, attributes, secondary=secondary))
        return outcomes


def _whole(message: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The whole message, when routing has it.

    Raises:
        _WholeMessageNeeded: When routing has only the routed fields.
    """
    if message is None:
        raise _WholeMessageNeeded
    return message


def segment_router(settings: TargetSettings) -> SegmentRouter:
    """Build the router of a Segment-format stream.

    Args:
        settings: The target settings.

    Returns:
        A function mapping one Segment message to its outcomes (and its lane's fields).
    """
    return SegmentRouter(settings)


@dataclass(frozen=True)
class StreamRouting:
    """How a configured stream's records become outcomes, records marked deleted included.

    Loading and ``--plan`` route records with it alike, so a plan's primary keys are the
    load's.
    """

    route: Router
    # Records marked deleted (``_sdc_deleted_at``); None: they route like any other.
    deleted: Router | None
    # The destination a mapping refusal names.
    destination: str | None

    @classmethod
    def of(
        cls, stream: StreamSettings, settings: TargetSettings, key_properties: list[str]
    ) -> StreamRouting:
        """Build a stream's routing.

        Args:
            stream: The stream's settings.
            settings: The target settings.
            key_properties: The stream's ``key_properties`` from its SCHEMA.

        Returns:
            The routing.
        """
        route = (
            segment_router(settings)
            if stream.type == "segment"
            else flat_router(stream, settings, key_properties)
        )
        return cls(
            route,
            deleted_record_router(stream, settings, route),
            stream.data_extension_key or stream.event_definition_key,
        )

    def outcomes(self, record: Mapping[str, Any], *, deleted: bool) -> list[Outcome]:
        """Route one record.

        Args:
            record: The record (validated, date-times parsed).
            deleted: The record carried a ``_sdc_deleted_at``.

        Returns:
            Its outcomes; a refusal when a value cannot be mapped.
        """
        route = self.deleted if deleted and self.deleted is not None else self.route
        try:
            return route(record)
        except MappingError as exc:  # a value SFMC cannot take (NaN): this record only
            return [MappingRefusal(str(exc), {}, self.destination)]
