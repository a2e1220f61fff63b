"""Knowing each destination: Data Extensions read once per run, created and extended.

At a stream's first SCHEMA, each Data Extension it writes is looked up by external key and its
columns read (cached for the run, shared by every stream). A missing one is an error naming
the key and the stream, or, with ``create_data_extensions``, it is created from the SCHEMA
(see :mod:`target_sfmc.de_columns` for the type rules) in ``data_extension_folder_id`` or the
business unit's root Data Extensions folder. With ``add_missing_fields``, columns the stream
sends and the Data Extension lacks are added before the rows that carry them; a Data Extension
this run created also gains the columns of attributes first seen in records (Segment traits,
audiences). Columns are never changed, dropped or retyped.

Every row then passes its destination's gate (:mod:`target_sfmc.column_gate`): attributes
the Data Extension has no column for are not sent (SFMC would ignore them) and are counted per
stream; a value that cannot fit its column makes the row a rejection before any request.
Journey entry events pass the same gate against their entry event's Data Extension
(definition -> ``dataExtensionId`` -> its fields), which SFMC validates ``Data`` against;
nothing is added there.

When SFMC refuses to show a definition (HTTP 403: the installed package lacks the read
permission), the target says so once and loads as before, without these checks.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from target_sfmc.column_gate import ColumnGate, StreamGates
from target_sfmc.de_columns import Column, ColumnRules
from target_sfmc.de_conflicts import mismatches
from target_sfmc.de_tables import TableSpec, stream_tables
from target_sfmc.errors import SfmcApiError, TargetSfmcError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from target_sfmc.accounting import RunReport
    from target_sfmc.client import SfmcClient
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
            folders, _status = self.client.retrieve_data_extension_folders()
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
