"""Knowing each destination: Data Extensions read once per run, created, extended, and checked.

At a stream's first SCHEMA, each Data Extension it writes is looked up by external key and its
columns read (cached for the run, shared by every stream). A missing one is an error naming
the key and the stream, or, with ``create_data_extensions``, it is created from the SCHEMA
(see :mod:`target_sfmc.de_columns` for the type rules) in ``data_extension_folder_id`` or the
business unit's root Data Extensions folder. With ``add_missing_fields``, columns the stream
sends and the Data Extension lacks are added before the rows that carry them; a Data Extension
this run created also gains the columns of attributes first seen in records (Segment traits,
audiences). Columns are never changed, dropped or retyped.

Every row then passes its destination's :class:`ColumnGate`: attributes the Data Extension
has no column for are not sent (SFMC would ignore them) and are counted per stream; a value
that cannot fit its column makes the row a rejection before any request. Journey entry
events pass the same gate against their entry event's Data Extension (definition ->
``dataExtensionId`` -> its fields), which SFMC validates ``Data`` against; nothing is added
there.

When SFMC refuses to show a definition (HTTP 403: the installed package lacks the read
permission), the target says so once and loads as before, without these checks.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from target_sfmc.de_columns import (
    CONTEXT_FOLDED,
    INT32_MAX,
    INT32_MIN,
    MAX_DECIMAL_PRECISION,
    Column,
    ColumnRules,
    PropertyShape,
    TableSpec,
    always_fits,
    compile_projection,
    compile_row_check,
    decimal_scale,
    stream_tables,
    value_check,
)
from target_sfmc.errors import SfmcApiError, TargetSfmcError
from target_sfmc.fastpath.rows import AttributeRow
from target_sfmc.mapping import title_case
from target_sfmc.records import DataExtensionRow, JourneyEvent, MappingRefusal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from target_sfmc.accounting import RunReport
    from target_sfmc.client import SfmcClient
    from target_sfmc.fastpath.lanes import RecordLane
    from target_sfmc.records import Attributes, Outcome
    from target_sfmc.settings import StreamSettings, TargetSettings

LOGGER = logging.getLogger("target-sfmc.data-extensions")

_FORBIDDEN = 403
_NOT_FOUND = frozenset({400, 404})
# SFMC adds columns asynchronously: the fields are read again after these waits (~60 s).
FIELDS_RECHECK_WAITS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
_MAX_SEARCH_PAGES = 20
ROOT_FOLDER_PARENT = "0"


@dataclass
class DataExtension:
    """A Data Extension as SFMC defines it (columns keyed by case-folded name)."""

    key: str
    object_id: str
    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    created: bool = False  # created by this run

    @property
    def primary_keys(self) -> tuple[str, ...]:
        """Names of the primary-key columns, in SFMC's order."""
        return tuple(c.name for c in self.columns.values() if c.primary_key)


class _Unreadable:
    """SFMC refused to show the definition (HTTP 403)."""

    def __repr__(self) -> str:
        return "UNREADABLE"


UNREADABLE = _Unreadable()
Lookup = DataExtension | _Unreadable | None  # None: it does not exist


def rules_of(settings: TargetSettings) -> ColumnRules:
    """The column type rules the settings give.

    Args:
        settings: Target settings.

    Returns:
        The rules.
    """
    des = settings.data_extensions
    return ColumnRules(des.text_length, des.decimal_precision, des.decimal_scale)


def _columns(fields: Iterable[Any]) -> dict[str, Column]:
    columns: dict[str, Column] = {}
    for raw in fields:
        column = Column.from_api(raw)
        if column is not None:
            columns[column.name.casefold()] = column
    return columns


class DataExtensionCatalog:
    """The definitions of the run's Data Extensions and entry events, read once, shared."""

    def __init__(self, client: SfmcClient, settings: TargetSettings) -> None:
        """Create the catalog.

        Args:
            client: SFMC client.
            settings: Target settings.
        """
        self.client = client
        self.settings = settings
        self.rules = rules_of(settings)
        self._lock = threading.RLock()
        self._data_extensions: dict[str, Lookup] = {}
        self._entry_events: dict[str, Lookup] = {}
        self._folder_id: int | None = settings.data_extensions.folder_id
        self._reads_refused: SfmcApiError | None = None
        self._event_reads_refused: SfmcApiError | None = None

    # -- reading ---------------------------------------------------------------------------

    def lookup(self, key: str) -> Lookup:
        """A Data Extension's definition (read once per run).

        Args:
            key: External key.

        Returns:
            The Data Extension, None when it does not exist, or :data:`UNREADABLE`.

        Raises:
            SfmcApiError: When SFMC answers with an error other than a refusal to show it.
        """
        with self._lock:
            folded = key.casefold()
            if folded in self._data_extensions:
                return self._data_extensions[folded]
            if self._reads_refused is not None:
                return UNREADABLE
            try:
                found: Lookup = self._find(key)
            except SfmcApiError as exc:
                if exc.status != _FORBIDDEN:
                    raise exc.with_context(f"reading data extension '{key}'") from None
                self._reads_refused = exc
                LOGGER.warning(
                    "SFMC refused to read the definition of data extension '%s' (HTTP 403, error "
                    "code %s): the installed package lacks the Data Extensions Read permission. "
                    "Loading without column checks: attributes are sent as they are, nothing is "
                    "created or added.",
                    key,
                    exc.error_code,
                )
                found = UNREADABLE
            self._data_extensions[folded] = found
            return found

    def _find(self, key: str) -> DataExtension | None:
        """Search by key; when the search finds nothing, ask the rowset read to be sure."""
        folded = key.casefold()
        item = None
        for page in range(1, _MAX_SEARCH_PAGES + 1):
            answer = self.client.search_data_extensions(key, page)
            items = [i for i in answer.get("items") or [] if isinstance(i, dict)]
            item = next((i for i in items if str(i.get("key", "")).casefold() == folded), None)
            count = answer.get("count")
            seen = page * int(answer.get("pageSize") or len(items) or 1)
            if item is not None or not items or not isinstance(count, int) or seen >= count:
                break
        if item is not None and item.get("id"):
            object_id, name = str(item["id"]), str(item.get("name") or key)
            key = str(item.get("key") or key)
        else:
            # The search may match names only: the rowset read names the DE's id for certain.
            try:
                page_answer = self.client.get_rowset_page(key)
            except SfmcApiError as exc:
                if exc.status in _NOT_FOUND:
                    return None
                raise
            if not page_answer.get("customObjectId"):
                return None
            object_id, name = str(page_answer["customObjectId"]), key
        columns = _columns(self.client.data_extension_fields(object_id))
        return DataExtension(key, object_id, name, columns)

    def entry_data_extension(self, definition_key: str) -> Lookup:
        """The Data Extension a Journey entry event definition validates ``Data`` against.

        Args:
            definition_key: Event definition key.

        Returns:
            Its Data Extension; None when the definition names none (or does not exist: SFMC
            then refuses each event, as before); :data:`UNREADABLE` when SFMC refused to show
            the definition or the Data Extension.

        Raises:
            SfmcApiError: When SFMC answers with another error.
        """
        with self._lock:
            if definition_key in self._entry_events:
                return self._entry_events[definition_key]
            found: Lookup
            try:
                found = self._find_entry(definition_key)
            except SfmcApiError as exc:
                if exc.status != _FORBIDDEN:
                    raise exc.with_context(f"reading event definition '{definition_key}'") from None
                if self._event_reads_refused is None:
                    self._event_reads_refused = exc
                    LOGGER.warning(
                        "SFMC refused to read event definition '%s' or its data extension "
                        "(HTTP 403, error code %s): the installed package lacks the Journeys "
                        "(Automation | Interactions) Read or Data Extensions Read permission. "
                        "Entry events are sent with every attribute, without column checks.",
                        definition_key,
                        exc.error_code,
                    )
                found = UNREADABLE
            self._entry_events[definition_key] = found
            return found

    def _find_entry(self, definition_key: str) -> DataExtension | None:
        if self._event_reads_refused is not None:
            raise self._event_reads_refused
        try:
            definition = self.client.get_event_definition(definition_key)
        except SfmcApiError as exc:
            if exc.status in _NOT_FOUND:
                return None
            raise
        object_id = definition.get("dataExtensionId")
        if not isinstance(object_id, str) or not object_id:
            return None
        name = str(definition.get("dataExtensionName") or object_id)
        columns = _columns(self.client.data_extension_fields(object_id))
        return DataExtension(name, object_id, name, columns)

    # -- writing ---------------------------------------------------------------------------

    def create(self, spec: TableSpec, stream: str) -> DataExtension:
        """Create a Data Extension from a stream's columns.

        Args:
            spec: The columns, primary keys and name.
            stream: The stream, for messages.

        Returns:
            The created Data Extension.

        Raises:
            TargetSfmcError: When a column cannot be created as the schema asks, or SFMC
                refuses the creation (with SFMC's message).
        """
        with self._lock:
            _refuse_problems(spec, spec.columns.values(), stream)
            columns = list(spec.columns.values())
            body: dict[str, Any] = {
                "name": spec.name,
                "key": spec.key,
                "description": f"Created by target-sfmc from stream '{stream}'.",
                "categoryId": self.folder_id(spec.key, stream),
                "isSendable": spec.sendable,
                "fields": [column.to_api(i) for i, column in enumerate(columns)],
            }
            if spec.sendable:
                body["sendableCustomObjectField"] = columns[0].name
                body["sendableSubscriberField"] = "Subscriber Key"
            try:
                answer = self.client.create_data_extension(body)
            except SfmcApiError as exc:
                context = f"creating data extension '{spec.key}' (stream '{stream}')"
                raise exc.with_context(context) from None
            object_id = str(answer.get("id") or "")
            created = _columns(answer.get("fields") or [])
            if not object_id or not created:
                found = self._find(spec.key)
                if found is None:
                    raise TargetSfmcError(
                        f"SFMC answered the creation of data extension '{spec.key}' (stream "
                        f"'{stream}') but does not show it; check it in Contact Builder."
                    )
                object_id, created = found.object_id, found.columns
            de = DataExtension(spec.key, object_id, spec.name, created, created=True)
            self._data_extensions[spec.key.casefold()] = de
            LOGGER.info(
                "Created data extension '%s' for stream '%s': %s.",
                spec.key,
                stream,
                ", ".join(
                    c.name + " " + c.short() + (" key" if c.primary_key else "") for c in columns
                ),
            )
            return de

    def add_columns(self, de: DataExtension, columns: list[Column], stream: str) -> None:
        """Add columns to a Data Extension and wait until SFMC shows them.

        Columns another stream added meanwhile are skipped; a new column is always nullable
        and never a primary key (SFMC refuses those on a Data Extension holding rows).

        Args:
            de: The Data Extension (its columns are updated).
            columns: The columns to add.
            stream: The stream, for messages.

        Raises:
            TargetSfmcError: When SFMC refuses, or the columns do not appear in time.
        """
        with self._lock:
            new = [
                Column(c.name, c.type, c.length, c.scale)
                for c in columns
                if c.name.casefold() not in de.columns
            ]
            if not new:
                return
            start = len(de.columns)
            try:
                self.client.add_data_extension_fields(
                    de.object_id, [column.to_api(start + i) for i, column in enumerate(new)]
                )
            except SfmcApiError as exc:
                raise exc.with_context(
                    f"adding columns to data extension '{de.key}' (stream '{stream}')"
                ) from None
            wanted = {c.name.casefold() for c in new}
            for wait in (0.0, *FIELDS_RECHECK_WAITS):
                time.sleep(wait)
                current = _columns(self.client.data_extension_fields(de.object_id))
                if wanted <= current.keys():
                    de.columns = current
                    LOGGER.info(
                        "Added to data extension '%s' for stream '%s': %s.",
                        de.key,
                        stream,
                        ", ".join(f"{c.name} {c.short()}" for c in new),
                    )
                    return
            raise TargetSfmcError(
                f"SFMC accepted new columns for data extension '{de.key}' (stream '{stream}') "
                "but did not show them within a minute; run again once they appear."
            )

    def folder_id(self, key: str, stream: str) -> int:
        """The folder created Data Extensions go in: the setting, else the root folder.

        Args:
            key: The Data Extension being created, for messages.
            stream: The stream, for messages.

        Returns:
            The folder (category) id.

        Raises:
            TargetSfmcError: When the root folder cannot be found.
        """
        if self._folder_id is not None:
            return self._folder_id
        try:
            folders = self.client.retrieve_data_extension_folders()
        except TargetSfmcError as exc:
            raise TargetSfmcError(
                f"Cannot create data extension '{key}' (stream '{stream}'): the root Data "
                f"Extensions folder could not be read ({exc}); set data_extension_folder_id."
            ) from None
        roots = [f for f in folders if f.get("ParentFolder.ID") == ROOT_FOLDER_PARENT]
        roots.sort(key=lambda f: f.get("CustomerKey") != "dataextension_default")
        folder = roots[0].get("ID") if roots else None
        if not folder or not folder.isdigit():
            raise TargetSfmcError(
                f"Cannot create data extension '{key}' (stream '{stream}'): SFMC shows no root "
                "Data Extensions folder; set data_extension_folder_id."
            )
        self._folder_id = int(folder)
        return self._folder_id

    # -- a stream's destinations -----------------------------------------------------------

    def prepare(
        self,
        stream_name: str,
        stream: StreamSettings,
        schema: Mapping[str, Any],
        key_properties: list[str],
        report: RunReport,
    ) -> StreamGates:
        """Know (and create or extend) every destination of a stream, at its SCHEMA.

        Args:
            stream_name: The stream.
            stream: Its settings.
            schema: Its SCHEMA.
            key_properties: Its key properties.
            report: The run report (ignored attributes).

        Returns:
            The gates its rows and events pass.

        Raises:
            TargetSfmcError: When a Data Extension does not exist (and is not created), or
                SFMC refuses a creation or new columns.
        """
        specs, events = stream_tables(stream, self.settings, schema, key_properties)
        options = self.settings.data_extensions
        gates = StreamGates()
        for spec in specs:
            found = self.lookup(spec.key)
            if isinstance(found, _Unreadable):
                continue
            if found is None:
                if not options.create:
                    raise TargetSfmcError(
                        f"Data extension '{spec.key}' (stream '{stream_name}') does not exist in "
                        "SFMC: check its external key, create it, or set create_data_extensions "
                        "to true."
                    )
                found = self.create(spec, stream_name)
            else:
                missing = [c for f, c in spec.columns.items() if f not in found.columns]
                if missing and (options.add_missing_fields or found.created):
                    _refuse_problems(spec, missing, stream_name, adding=True)
                    self.add_columns(found, missing, stream_name)
                for problem in mismatches(found, spec):
                    LOGGER.warning("Stream '%s': %s", stream_name, problem)
            can_add = options.add_missing_fields or found.created
            gates.rows[spec.key] = ColumnGate(
                self, found, spec, stream_name, report, can_add=can_add
            )
        for event in events:
            entry = self.entry_data_extension(event.key)
            if isinstance(entry, DataExtension):
                gates.events[event.key] = ColumnGate(
                    self, entry, event, stream_name, report, can_add=False, entry_event=True
                )
        return gates


def _refuse_problems(
    spec: TableSpec, columns: Iterable[Column], stream: str, *, adding: bool = False
) -> None:
    for column in columns:
        problem = spec.problems.get(column.name.casefold())
        if problem is not None:
            what = "add a column to" if adding else "create"
            raise TargetSfmcError(
                f"Cannot {what} data extension '{spec.key}' for stream '{stream}': column "
                f"'{column.name}' cannot be made as the schema asks, {problem}; fix the schema "
                "or create the column yourself."
            )


def mismatches(de: DataExtension, spec: TableSpec) -> list[str]:
    """Where an existing Data Extension and a stream disagree: primary keys and types.

    Args:
        de: The Data Extension.
        spec: The columns the stream sends.

    Returns:
        One sentence per disagreement.
    """
    problems: list[str] = []
    expected = {name.casefold() for name in spec.primary_keys}
    actual = {name.casefold() for name in de.primary_keys}
    if expected != actual:
        problems.append(
            f"data extension '{de.key}' has primary key {_names(de.primary_keys)} but the "
            f"stream's rows are keyed by {_names(spec.primary_keys)}; SFMC will refuse them."
        )
    for existing, column, conflict in conflicts(de, spec):
        problems.append(
            f"column '{existing.name}' of data extension '{de.key}' is "
            f"{existing.short()} but the stream sends {column.short()}: {conflict.reason}."
        )
    return problems


def conflicts(de: DataExtension, spec: TableSpec) -> list[tuple[Column, Column, Conflict]]:
    """The columns whose type may refuse values the stream sends.

    Args:
        de: The Data Extension.
        spec: The columns the stream sends.

    Returns:
        ``(existing column, the stream's column, conflict)`` per conflict.
    """
    found = []
    for folded, column in spec.columns.items():
        existing = de.columns.get(folded)
        if existing is None or folded in CONTEXT_FOLDED:
            continue
        conflict = type_conflict(existing, column, spec.shapes.get(folded))
        if conflict is not None:
            found.append((existing, column, conflict))
    return found


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{n}'" for n in names) if names else "none"


_TEXT_LIKE = frozenset({"Text", "EmailAddress", "Phone", "Locale"})
_NUMERIC = frozenset({"Number", "Decimal"})
_INT32_DIGITS = 10


@dataclass(frozen=True)
class Conflict:
    """Why values a stream sends may not fit an existing column."""

    reason: str
    every_value: bool  # every value is refused, not only some


def type_conflict(
    existing: Column, wanted: Column, shape: PropertyShape | None = None
) -> Conflict | None:
    """Tell whether values of the type the schema gives fit an existing column.

    Sizes count only where the schema declares them (``maxLength``, ``multipleOf``, bounds):
    the default sizes of created columns are a guess, and every value is checked anyway.

    Args:
        existing: The Data Extension's column.
        wanted: The column the stream's schema gives.
        shape: The property's schema, when the column comes from one.

    Returns:
        The conflict, or None when the values fit (or may: SFMC converts text).
    """
    if existing.type == wanted.type or (existing.type == "Text" and wanted.type in _TEXT_LIKE):
        return _size_conflict(existing, wanted, shape)
    if existing.type == "Text":
        return None  # numbers, booleans and dates are written as text
    if existing.type == "Decimal" and wanted.type == "Number":
        whole = (existing.length or 18) - (existing.scale or 0)
        if whole >= _INT32_DIGITS:
            return None
        return Conflict("values with more digits are rejected", every_value=False)
    if existing.type == "Number" and wanted.type == "Decimal":
        return Conflict("values with a fraction or beyond 32 bits are rejected", every_value=False)
    if wanted.type == "Text":
        return Conflict(f"text that is not a valid {existing.type} is rejected", every_value=False)
    return Conflict(f"{wanted.type} values are rejected", every_value=True)


def _size_conflict(
    existing: Column, wanted: Column, shape: PropertyShape | None
) -> Conflict | None:
    keywords = shape.keywords if shape is not None else {}
    if existing.type in _TEXT_LIKE:
        declared = keywords.get("maxLength")
        if isinstance(declared, int) and existing.length and declared > existing.length:
            return Conflict(
                f"values longer than {existing.length} characters are rejected", every_value=False
            )
        return None
    if existing.type == "Decimal":
        scale = decimal_scale(keywords.get("multipleOf"))
        if scale is not None and scale > (existing.scale or 0):
            return Conflict(
                f"values with more than {existing.scale or 0} digits after the point are rejected",
                every_value=False,
            )
        if wanted.scale == 0 and wanted.length == MAX_DECIMAL_PRECISION:
            return _whole_digits_conflict(existing, shape)
    return None


def _whole_digits_conflict(existing: Column, shape: PropertyShape | None) -> Conflict | None:
    if shape is None or always_fits(existing, shape):
        return None
    return Conflict("values with more digits are rejected", every_value=False)


@dataclass(frozen=True)
class _CompiledCheck:
    """A compiled row check and the column checks its answers point into."""

    run: Callable[[Any], tuple[int, str] | None]
    checks: list[tuple[str, Column, Callable[[Any], str | None]]]
    where: str

    def message(self, found: tuple[int, str]) -> str:
        """The refusal message of a value that does not fit.

        Args:
            found: ``(index into checks, reason)`` as the compiled check answers.

        Returns:
            One sentence naming the column, never the value.
        """
        index, reason = found
        column = self.checks[index][1]
        return (
            f"The value for column [{column.name}] {reason}: the column is "
            f"{column.describe()} in {self.where}."
        )


@dataclass
class StreamGates:
    """The gates of one stream: per Data Extension key and per event definition key."""

    rows: dict[str, ColumnGate] = field(default_factory=dict)
    events: dict[str, ColumnGate] = field(default_factory=dict)

    def admit(self, outcome: Outcome) -> Outcome:
        """Pass an outcome through its destination's gate.

        Args:
            outcome: A row, event, skip or refusal.

        Returns:
            The row or event with only the columns its destination has, or a refusal when a
            value does not fit; other outcomes unchanged.
        """
        if type(outcome) is DataExtensionRow:
            gate = self.rows.get(outcome.data_extension_key)
            return outcome if gate is None else gate.admit_row(outcome)
        if type(outcome) is JourneyEvent:
            gate = self.events.get(outcome.event_definition_key)
            return outcome if gate is None else gate.admit_event(outcome)
        return outcome


class ColumnGate:
    """What one stream sends to one destination: only its columns, only values that fit."""

    def __init__(
        self,
        catalog: DataExtensionCatalog,
        de: DataExtension,
        spec: TableSpec,
        stream: str,
        report: RunReport,
        *,
        can_add: bool,
        entry_event: bool = False,
    ) -> None:
        """Create the gate.

        Args:
            catalog: The run's catalog (to add columns).
            de: The destination (its columns may grow).
            spec: The columns the stream's SCHEMA gives.
            stream: The stream.
            report: The run report.
            can_add: Columns for new attributes may be added.
            entry_event: The destination is a Journey entry event's Data Extension.
        """
        self.catalog = catalog
        self.de = de
        self.spec = spec
        self.stream = stream
        self.report = report
        self.can_add = can_add
        self.entry_event = entry_event
        # Names sent as they are (exact spelling as the mapping writes them).
        self._known: set[str] = set(spec.primary_keys)
        self._ignored: set[str] = set()
        self._checks: dict[str, tuple[Column, Callable[[Any], str | None]]] = {}
        self._row_types: set[type] = set()
        # Compiled checks, by the shape of the rows they read: a fast-path row type, the dicts
        # projected from one (("dict", row type)), or any dict (None).
        self._compiled: dict[Any, _CompiledCheck] = {}
        # Row types of lanes whose decode already holds these names to their columns.
        self._trusted: dict[type, frozenset[str]] = {}
        # Row type -> its compiled check, for row types whose every name is a column.
        self._fast: dict[type, _CompiledCheck] = {}
        # Row type -> a dict of only its names that are columns (the others are ignored).
        self._projections: dict[type, Callable[[Any], dict[str, Any]]] = {}
        for column in de.columns.values():
            self._accept(column.name)
        for folded, column in spec.columns.items():
            if folded in de.columns:
                self._accept(column.name)

    def _accept(self, name: str) -> None:
        """Send the attribute (its column exists); check its values unless they always fit."""
        self._known.add(name)
        folded = name.casefold()
        column = self.de.columns.get(folded)
        if column is None:
            return
        shape = None if folded in CONTEXT_FOLDED else self.spec.shapes.get(folded)
        check = None if always_fits(column, shape) else value_check(column)
        if check is not None:
            self._checks[name] = (column, check)
            self._compiled.clear()
            self._fast.clear()

    def lane_constraint(self, title: str) -> tuple[type, msgspec.Meta] | None:
        """What a lane's decode can check of an attribute's values (in C, per record).

        Args:
            title: The attribute's Title Case name.

        Returns:
            ``(str, max_length)`` for Text-like columns, ``(int, 32-bit range)`` for Number
            ones, else None.
        """
        if title not in self._checks:
            return None
        column = self._checks[title][0]
        if column.type in {"Text", "EmailAddress", "Phone", "Locale"} and column.length:
            return str, msgspec.Meta(max_length=column.length)
        if column.type == "Number":
            return int, msgspec.Meta(ge=INT32_MIN, le=INT32_MAX)
        return None

    def lane_constraints(self, schema: Mapping[str, Any]) -> dict[str, tuple[type, msgspec.Meta]]:
        """What a lane's decode can check of each property's values (in C, per record).

        Args:
            schema: The stream's SCHEMA.

        Returns:
            Property -> ``(str, max_length)`` for Text-like columns, ``(int, 32-bit range)``
            for Number ones.
        """
        properties = schema.get("properties")
        constraints = {}
        for name in properties if isinstance(properties, dict) else ():
            constraint = self.lane_constraint(title_case(name))
            if constraint is not None:
                constraints[name] = constraint
        return constraints

    def trust_lane(self, lane: RecordLane) -> None:
        """Rows a lane builds need no check of the names its decode constrained.

        Args:
            lane: The stream's lane.
        """
        row_type = lane.row_type
        if row_type is not None and lane.guaranteed:
            self._trusted[row_type] = lane.guaranteed
            self._compiled.pop(row_type, None)
            self._compiled.pop(("dict", row_type), None)
            self._fast.pop(row_type, None)

    def admit_row(self, row: DataExtensionRow) -> DataExtensionRow | MappingRefusal:
        """Check a row before it joins its batch.

        Args:
            row: The row.

        Returns:
            The row (without attributes the Data Extension lacks), or a refusal naming the
            column whose value does not fit.
        """
        values = row.values
        kind = type(values)
        fast = self._fast.get(kind)
        if fast is not None:  # a lane's row: every name is a column, one compiled check
            found = fast.run(values)
            if found is None:
                return row
            return MappingRefusal(fast.message(found), values, row.data_extension_key)
        project = self._projections.get(kind)
        if project is None:
            values = self._sorted_out(values)
            problem = self._misfit(values)
        else:  # a lane's row with attributes already ignored: keep the others
            values = project(values)
            problem = self._misfit(values, projected_from=kind)
        if problem is not None:
            return MappingRefusal(problem, values, row.data_extension_key)
        if values is not row.values:
            row.values = values
        return row

    def admit_event(self, event: JourneyEvent) -> JourneyEvent | MappingRefusal:
        """Check an entry event's ``Data`` before it joins its batch.

        Args:
            event: The event.

        Returns:
            The event (``Data`` without attributes the entry Data Extension lacks), or a
            refusal naming the column whose value does not fit.
        """
        data = self._sorted_out(event.data)
        problem = self._misfit(data)
        if problem is not None:
            row = {"ContactKey": event.contact_key, "Data": data}
            return MappingRefusal(
                problem, row, event.event_definition_key, secondary=event.secondary
            )
        if data is not event.data:
            event.data = dict(data)
        return event

    def _misfit(self, values: Attributes, projected_from: type | None = None) -> str | None:
        """The refusal message of the first value that does not fit its column, if any."""
        kind = type(values) if isinstance(values, AttributeRow) else None
        key: Any = kind if projected_from is None else ("dict", projected_from)
        compiled = self._compiled.get(key)
        if compiled is None:
            source = kind if kind is not None else projected_from
            trusted = self._trusted.get(source, frozenset()) if source else frozenset()
            checks = [(n, c, f) for n, (c, f) in self._checks.items() if n not in trusted]
            positions = None
            if kind is not None:
                positions = {n: i for i, n in enumerate(kind.__struct_encode_fields__)}
            where = "the entry event's data extension" if self.entry_event else "data extension"
            compiled = self._compiled[key] = _CompiledCheck(
                compile_row_check(checks, positions), checks, f"{where} [{self.de.key}]"
            )
        if kind is not None and kind in self._row_types:
            self._fast[kind] = compiled
        found = compiled.run(values)
        return None if found is None else compiled.message(found)

    def _sorted_out(self, values: Attributes) -> Attributes:
        """The values whose names are columns; new names are added or counted as ignored."""
        kind = type(values)
        if kind in self._row_types:
            return values
        known = self._known
        names: Iterable[str]
        if isinstance(values, AttributeRow):
            if known.issuperset(values.__struct_encode_fields__):
                self._row_types.add(kind)
                return values
            names = values.keys()
        else:
            names = values.keys()
            if known.issuperset(names):
                return values
        unknown = [name for name in names if name not in known and name not in self._ignored]
        if unknown:
            self._learn(unknown, values)
        if isinstance(values, AttributeRow):
            fields = values.__struct_encode_fields__
            if all(name in known or name in self._ignored for name in fields):
                kept = [(name, i) for i, name in enumerate(fields) if name in known]
                self._projections[kind] = compile_projection(kept)
        return {name: value for name, value in values.items() if name in known}

    def _learn(self, names: list[str], values: Attributes) -> None:
        """Accept names the Data Extension has, add or ignore the others."""
        new: list[Column] = []
        for name in names:
            if name.casefold() in self.de.columns:
                self._accept(name)
            elif self.can_add:
                new.append(self.spec.column_for(name, values.get(name), self.catalog.rules))
            else:
                self._ignore(name)
        if new:
            self.catalog.add_columns(self.de, new, self.stream)
            for column in new:
                self._accept(column.name)

    def _ignore(self, name: str) -> None:
        self._ignored.add(name)
        where = (
            f"the entry event's data extension '{self.de.key}'"
            if self.entry_event
            else f"data extension '{self.de.key}'"
        )
        self.report.ignore_attribute(
            self.stream,
            name,
            f"{where} has no such column; create it, or set add_missing_fields"
            if not self.entry_event
            else f"{where} has no such column, and SFMC would refuse the event",
        )
