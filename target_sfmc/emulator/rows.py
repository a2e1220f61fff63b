"""Row semantics shared by the synchronous (hub) and asynchronous DE endpoints.

Rules, as SFMC applies them:

- column names match case-insensitively; unknown columns are ignored, but a row naming no known
  column is an error ("At least one existing field is required in the values property");
- every primary-key column needs a non-null value (sync: in ``keys``; async: in the flat item);
- values are checked against their column's type (`validation`);
- a new row needs every non-nullable column; an existing row (same primary key; Text keys
  compare case-insensitively) has the provided columns updated and the others kept;
- the sync rowset applies rows in order up to the first failing one (not atomic);
- async rows succeed or fail independently.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any, Optional, Union

import msgspec
from msgspec import UNSET, Meta, UnsetType
from msgspec.structs import astuple

from target_sfmc.emulator.faults import fold_key_value
from target_sfmc.emulator.validation import (
    INT32_MAX,
    INT32_MIN,
    REASON_NOT_NULL,
    Validator,
    column_message,
    compile_validator,
    normalize_key_value,
    to_system_time,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from target_sfmc.emulator.faults import JobFaults
    from target_sfmc.emulator.schema import DataExtension, Field
    from target_sfmc.emulator.store import Store

NO_FIELDS_MESSAGE = "At least one existing field is required in the values property"
MISSING_KEYS_MESSAGE = "Cannot locate the existing record. Required keys are missing."
DEADLOCK_MESSAGE = (
    "Transaction (Process ID 6840) was deadlocked on lock resources with another process and "
    "has been chosen as the deadlock victim. Rerun the transaction."
)
JOB_ERROR_MESSAGE = "An error occurred while processing the request. No rows were saved."


def unable_to_save_message(de_id: str) -> str:
    """Return SFMC's bare "Unable to save rows" message for a DE.

    Args:
        de_id: The DE's id.

    Returns:
        ``"Unable to save rows for data extension ID <id>"``.
    """
    return f"Unable to save rows for data extension ID {de_id}"


ASYNC_ROW_ERROR_CODE = 2
ASYNC_COLUMN_ERROR_CODE = 70001

UPSERTED_ITEM: dict[str, Any] = {"message": "Upserted DataExtensionObject", "status": "OK"}
INSERTED_ITEM: dict[str, Any] = {"message": "Inserted DataExtensionObject", "status": "OK"}
DEADLOCK_ITEM: dict[str, Any] = {
    "errorCode": ASYNC_ROW_ERROR_CODE,
    "message": DEADLOCK_MESSAGE,
    "status": "Error",
}
JOB_ERROR_ITEM: dict[str, Any] = {
    "errorCode": ASYNC_ROW_ERROR_CODE,
    "message": JOB_ERROR_MESSAGE,
    "status": "Error",
}

_KEY_SEPARATOR = "\x1f"


class IssueKind(Enum):
    """Kinds of row problems."""

    NO_FIELDS = "no_fields"
    MISSING_KEY = "missing_key"
    INVALID = "invalid"
    NOT_NULL = "not_null"


@dataclass(frozen=True)
class RowIssue:
    """One problem with one row.

    Attributes:
        kind: What is wrong.
        column: Canonical column name ('' for `IssueKind.NO_FIELDS`).
        reason: Tail of the SFMC column message (a `validation.REASON_*` constant).
    """

    kind: IssueKind
    column: str = ""
    reason: str = ""

    @property
    def message(self) -> str:
        """SFMC's (sync API) message for the problem."""
        if self.kind is IssueKind.NO_FIELDS:
            return NO_FIELDS_MESSAGE
        return column_message(self.column, self.reason)

    def async_error(self) -> dict[str, Any]:
        """Return the entry for an async result item's ``errors`` list.

        Returns:
            ``{"errorMessage", "name", "errorCode"}`` with the column name lower-cased.
        """
        if self.kind is IssueKind.NO_FIELDS:
            text = NO_FIELDS_MESSAGE
        elif self.kind in {IssueKind.MISSING_KEY, IssueKind.NOT_NULL}:
            text = f"Column [{self.column.lower()}] {REASON_NOT_NULL}"
        else:
            text = self.message
        return {
            "errorMessage": text,
            "name": self.column.lower(),
            "errorCode": ASYNC_COLUMN_ERROR_CODE,
        }


class UnknownPrimaryKeyError(Exception):
    """A sync row's ``keys`` names a column that is not a primary key of the DE.

    Args:
        name: The name as sent.
    """

    def __init__(self, name: str) -> None:
        """Remember the offending name."""
        super().__init__(f"Primary key '{name}' does not exist.")
        self.name = name


def async_error_item(issues: Sequence[RowIssue]) -> dict[str, Any]:
    """Build an async result item for a rejected row.

    Args:
        issues: The row's problems (at least one).

    Returns:
        ``{"errorCode": 2, "errors": [...], "message": ..., "status": "Error"}``.
    """
    if any(i.kind is IssueKind.MISSING_KEY for i in issues):
        message = MISSING_KEYS_MESSAGE
    else:
        message = "; ".join(i.message for i in issues)
    return {
        "errorCode": ASYNC_ROW_ERROR_CODE,
        "errors": [i.async_error() for i in issues],
        "message": message,
        "status": "Error",
    }


_MAX_MEMO = 10_000
_MAX_KNOWN_GOOD = 4096
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class _Entry:
    """Per-column facts for the fast row check."""

    name: str
    text_max: int
    validator: Validator
    empty_is_null: bool
    reject_null: bool
    known_good: set[str]


class CompiledDataExtension:
    """A DE definition with its validators compiled, ready to check rows quickly.

    Args:
        de: The definition.
    """

    def __init__(self, de: DataExtension) -> None:
        """Compile validators and lookup tables."""
        self.de = de
        self.primary_keys: list[Field] = de.primary_keys
        self.primary_key_names = frozenset(f.name for f in self.primary_keys)
        self.defaults = {f.name: f.default_value for f in de.fields if f.default_value is not None}
        self.required: list[Field] = [
            f
            for f in de.fields
            if not f.nullable and not f.primary_key and f.name not in self.defaults
        ]
        self.columns: dict[str, tuple[Field, Validator, bool]] = {
            f.name: (f, compile_validator(f), f.type != "Text" or f.primary_key) for f in de.fields
        }
        self._entries: dict[str, _Entry] = {
            f.name.casefold(): _Entry(
                name=f.name,
                text_max=f.length if f.type == "Text" and f.length is not None else -1,
                validator=self.columns[f.name][1],
                empty_is_null=self.columns[f.name][2],
                reject_null=not f.nullable and not f.primary_key,
                known_good=set(),
            )
            for f in de.fields
        }
        self._lookup: dict[str, _Entry | None] = {}
        self.date_columns = tuple(f.name for f in de.fields if f.type == "Date")
        self._order = {f.name: i for i, f in enumerate(de.fields)}
        self._names = tuple(f.name for f in de.fields)
        clean_path = self.primary_keys and not self.defaults
        self._clean_items = _clean_items_decoder(de) if clean_path else None
        # Columns msgspec cannot check exactly: (value getter, validator, nullable).
        self._checked_in_python = tuple(
            (attrgetter(f"c{i}"), self.columns[f.name][1], f.nullable)
            for i, f in enumerate(de.fields)
            if f.type not in _STRUCT_CHECKED
        )
        keys = [f"c{i}" for i, f in enumerate(de.fields) if f.primary_key]
        self._clean_key_values: Callable[[Any], Any] = _no_keys
        if len(keys) == 1:
            self._clean_key_values = _one(attrgetter(keys[0]))
        elif keys:
            self._clean_key_values = attrgetter(*keys)

    def clean_identities(self, rows: Sequence[Any]) -> list[str]:
        """Return the identities of clean rows (see `identity`), in one pass.

        Args:
            rows: Clean rows from `decode_clean_items`.

        Returns:
            One identity per row.
        """
        pks = self.primary_keys
        if len(pks) == 1 and pks[0].type == "Text":  # msgspec made every value a str
            return [value.rstrip(" ").casefold() for (value,) in map(self._clean_key_values, rows)]
        return [self.identity(row) for row in rows]

    def decode_clean_items(self, body: bytes) -> list[Any] | None:
        """Decode an async body in one pass when every row is clean.

        A row is clean when it uses the defined column spellings, carries every key and
        required column, and `prepare_flat` would accept it unchanged; msgspec checks most
        columns while decoding, the validators the rest, column by column.

        Args:
            body: The request body.

        Returns:
            The rows (Structs, see `RowWriter.apply_async`), or None when any row needs
            `prepare_flat` (which then decides).
        """
        if self._clean_items is None:
            return None
        try:
            items: list[Any] = self._clean_items(body).items
        except msgspec.DecodeError:
            return None
        for value_of, validator, nullable in self._checked_in_python:
            column = [value for value in map(value_of, items) if value is not UNSET]
            if None in column:
                if not nullable:
                    return None
                column = [value for value in column if value is not None]
            if any(map(validator, column)):
                return None
        return items

    def clean_row(self, row: Any) -> dict[str, Any]:
        """Return a clean row (a Struct from `decode_clean_items`) as a mapped row."""
        return {
            name: value
            for name, value in zip(self._names, astuple(row), strict=True)
            if value is not UNSET
        }

    def _entry(self, name: str) -> _Entry | None:
        """Resolve a client column name (case-insensitive, memoised)."""
        entry = self._entries.get(name.casefold())
        if len(self._lookup) < _MAX_MEMO:
            self._lookup[name] = entry
        return entry

    def prepare_flat(self, item: dict[str, Any]) -> tuple[dict[str, Any], list[RowIssue]]:  # noqa: C901, PLR0912
        """Map and check one flat (async) row in a single pass.

        Args:
            item: Column -> value as sent.

        Returns:
            ``(mapped_row, issues)``; issues list missing keys first, then column problems in
            the row's order, with the "no known column" problem first of all.
        """
        lookup = self._lookup
        mapped: dict[str, Any] = {}
        issues: list[RowIssue] = []
        for name, value in item.items():
            entry = lookup.get(name, _MISSING)
            if entry is _MISSING:
                entry = self._entry(name)
            if entry is None:
                continue
            column = entry.name
            if column in mapped:  # the same column twice in different casing: later wins
                mapped = self.map_names(item)
                return mapped, self._flat_issues(mapped)
            mapped[column] = value
            if type(value) is str:
                if len(value) <= entry.text_max or value in entry.known_good:
                    continue
            elif value is None:
                if entry.reject_null:
                    issues.append(RowIssue(IssueKind.NOT_NULL, column, REASON_NOT_NULL))
                continue
            if entry.empty_is_null and value == "":
                if entry.reject_null:
                    issues.append(RowIssue(IssueKind.NOT_NULL, column, REASON_NOT_NULL))
                continue
            reason = entry.validator(value)
            if reason is not None:
                issues.append(RowIssue(IssueKind.INVALID, column, reason))
            elif type(value) is str and len(entry.known_good) < _MAX_KNOWN_GOOD:
                entry.known_good.add(value)
        missing = [
            RowIssue(IssueKind.MISSING_KEY, pk.name, REASON_NOT_NULL)
            for pk in self.primary_keys
            if mapped.get(pk.name) is None or mapped[pk.name] == ""
        ]
        if missing:
            issues = missing + issues
        if not mapped:
            issues.insert(0, RowIssue(IssueKind.NO_FIELDS))
        return mapped, issues

    def _flat_issues(self, mapped: dict[str, Any]) -> list[RowIssue]:
        issues = self.check(mapped, mapped)
        if not mapped:
            issues.insert(0, RowIssue(IssueKind.NO_FIELDS))
        return issues

    def map_names(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Map client column names to canonical names, dropping unknown columns.

        Args:
            raw: Column -> value as sent.

        Returns:
            Canonical column -> value (a later case-variant of a name wins).
        """
        lookup = self._lookup
        mapped: dict[str, Any] = {}
        for name, value in raw.items():
            entry = lookup.get(name, _MISSING)
            if entry is _MISSING:
                entry = self._entry(name)
            if entry is not None:
                mapped[entry.name] = value
        return mapped

    def check(self, mapped: dict[str, Any], key_source: dict[str, Any]) -> list[RowIssue]:
        """Check primary keys and column values of a mapped row.

        Args:
            mapped: Canonical column -> value.
            key_source: Where primary-key values must come from (canonical names).

        Returns:
            The problems found, in column order of the row (keys first).
        """
        issues: list[RowIssue] = []
        for pk in self.primary_keys:
            value = key_source.get(pk.name)
            if value is None or value == "":
                issues.append(RowIssue(IssueKind.MISSING_KEY, pk.name, REASON_NOT_NULL))
        columns = self.columns
        for name, value in mapped.items():
            fld, validator, empty_is_null = columns[name]
            if value is None or (empty_is_null and value == ""):
                if not fld.nullable and not fld.primary_key:
                    issues.append(RowIssue(IssueKind.NOT_NULL, name, REASON_NOT_NULL))
                continue
            reason = validator(value)
            if reason is not None:
                issues.append(RowIssue(IssueKind.INVALID, name, reason))
        return issues

    def identity(self, mapped: Any) -> str:
        """Return the primary-key identity of a valid row.

        Args:
            mapped: A row whose key values passed `check` (or a clean row).

        Returns:
            A string equal for rows SFMC treats as the same row (a fresh UUID for DEs without
            primary keys, where every row is new).
        """
        if type(mapped) is not dict:
            return self._identity_of(self._clean_key_values(mapped))
        return self._identity_of([mapped[pk.name] for pk in self.primary_keys])

    def store_dates(self, mapped: dict[str, Any]) -> None:
        """Turn the Date values of a checked row into SFMC's stored form (`to_system_time`).

        Args:
            mapped: A mapped row without problems; changed in place.
        """
        for name in self.date_columns:
            value = mapped.get(name)
            if value is not None:
                mapped[name] = to_system_time(value)

    def is_never_saved(self, mapped: Any, bare_keys: frozenset[str]) -> bool:
        """Tell whether a row has a primary-key value named by ``bare_10006_keys``.

        Args:
            mapped: A mapped row (dict) or a clean row.
            bare_keys: Folded key values (`FaultConfig.bare_10006_folded`).

        Returns:
            True when any of the row's key values is in ``bare_keys``.
        """
        if type(mapped) is dict:
            values = [mapped.get(pk.name) for pk in self.primary_keys]
        else:
            values = list(self._clean_key_values(mapped))
        return any(v is not None and fold_key_value(v) in bare_keys for v in values)

    def _identity_of(self, key_values: Sequence[Any]) -> str:
        pks = self.primary_keys
        if not pks:
            return uuid.uuid4().hex
        if len(pks) == 1:
            pk, value = pks[0], key_values[0]
            if pk.type == "Text" and type(value) is str:
                return value.rstrip(" ").casefold()
            return normalize_key_value(pk, value)
        return _KEY_SEPARATOR.join(
            normalize_key_value(pk, value) for pk, value in zip(pks, key_values, strict=True)
        )

    def ordered(self, row: dict[str, Any]) -> dict[str, Any]:
        """Return a stored row with its columns in the DE's defined order.

        Args:
            row: A stored row.

        Returns:
            The same columns, ordered (columns no longer defined go last).
        """
        order = self._order
        last = len(order)
        return dict(sorted(row.items(), key=lambda kv: order.get(kv[0], last)))

    def prepare_sync(
        self, keys: dict[str, Any], values: dict[str, Any]
    ) -> tuple[dict[str, Any], list[RowIssue]]:
        """Map and check one hub row (``{"keys": …, "values": …}``).

        Args:
            keys: Primary-key values by column name.
            values: Column values by column name.

        Returns:
            ``(mapped_row, issues)``.

        Raises:
            UnknownPrimaryKeyError: If ``keys`` names a column that is not a primary key.
        """
        mapped = self.map_names(values)
        has_known_value = bool(mapped)
        key_values: dict[str, Any] = {}
        for name, value in keys.items():
            found = self.de.column(name)
            if found is None or not found.primary_key:
                raise UnknownPrimaryKeyError(name)
            key_values[found.name] = value
        mapped.update(key_values)
        issues = [] if has_known_value else [RowIssue(IssueKind.NO_FIELDS)]
        issues.extend(self.check(mapped, key_values))
        return mapped, issues


def _one(value_of: Callable[[Any], Any]) -> Callable[[Any], tuple[Any]]:
    return lambda row: (value_of(row),)


def _no_keys(_row: Any) -> tuple[()]:
    return ()


# Column types whose rules msgspec constraints express exactly (for the values they admit).
_STRUCT_CHECKED = frozenset({"Text", "Number", "Boolean"})


def _column_type(field: Field) -> Any:
    """The msgspec type admitting exactly the clean values of a column (`Any`: checked later)."""
    kind: Any
    if field.type == "Text":
        kind = Annotated[str, Meta(max_length=field.length or 0, min_length=int(field.primary_key))]
    elif field.type == "Number":
        kind = Annotated[int, Meta(ge=INT32_MIN, le=INT32_MAX)]
    elif field.type == "Boolean":
        kind = bool
    else:
        return Any
    return Optional[kind] if field.nullable else kind  # noqa: UP045


def _clean_items_decoder(de: DataExtension) -> Callable[[bytes], Any] | None:
    """A decoder for ``{"items": [...]}`` bodies whose rows are all clean, if one can be built."""
    fields: list[tuple[Any, ...]] = [
        (f"c{i}", _column_type(f))
        if f.primary_key or not f.nullable
        else (f"c{i}", Union[_column_type(f), UnsetType], UNSET)  # noqa: UP007
        for i, f in enumerate(de.fields)
    ]
    # Required fields come first in a Struct; keep the defined order with keyword-only fields.
    try:
        row = msgspec.defstruct(
            "CleanRow",
            fields,
            kw_only=True,
            forbid_unknown_fields=True,
            rename={f"c{i}": f.name for i, f in enumerate(de.fields)},
            gc=False,  # decoded JSON never forms reference cycles
        )
        body = msgspec.defstruct("CleanBody", [("items", list[row])])  # type: ignore[valid-type]
        return msgspec.json.Decoder(body).decode
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class RowsetOutcome:
    """Result of a sync rowset (or single-row) upsert.

    Attributes:
        applied: Rows written (the rows before the first failing one).
        issues: Problems of the first failing row; empty when every row was written.
        unknown_primary_key: Name from ``keys`` that is not a primary key, if that stopped it.
        never_saved: A row named by ``bare_10006_keys`` stopped it (a bare 10006).
    """

    applied: int
    issues: list[RowIssue]
    unknown_primary_key: str | None = None
    never_saved: bool = False


class RowWriter:
    """Applies rows to the store with SFMC's semantics.

    Args:
        store: Where rows live.
    """

    def __init__(self, store: Store) -> None:
        """Bind to a store."""
        self.store = store

    @staticmethod
    def _merge(
        cde: CompiledDataExtension,
        existing: Any,
        mapped: Any,
    ) -> tuple[Any, list[RowIssue]]:
        """Upsert one checked row (a mapped dict or a clean row) into its current state.

        Returns:
            ``(new_row, [])`` or ``(None, issues)`` for a new row missing required columns.
        """
        if type(mapped) is not dict:  # a clean row: required columns checked when decoded
            if existing is None:
                return mapped, []
            mapped = cde.clean_row(mapped)
        if existing is None:
            missing = [f for f in cde.required if f.name not in mapped]
            if missing:
                return None, [
                    RowIssue(IssueKind.NOT_NULL, f.name, REASON_NOT_NULL) for f in missing
                ]
            for name, value in cde.defaults.items():
                mapped.setdefault(name, value)
            return mapped, []  # a fresh dict from prepare_*
        row = dict(existing) if type(existing) is dict else cde.clean_row(existing)
        pk_names = cde.primary_key_names
        row.update({name: value for name, value in mapped.items() if name not in pk_names})
        return row, []

    @staticmethod
    def _prepared_rowset(
        cde: CompiledDataExtension,
        rows: Sequence[tuple[dict[str, Any], dict[str, Any]]],
        *,
        sfmc_dates: bool,
    ) -> tuple[list[tuple[dict[str, Any], list[RowIssue]]], str | None]:
        """Map and check hub rows up to one naming a non-key column in ``keys``.

        Returns:
            ``(prepared rows, that column's name or None)``.
        """
        prepared: list[tuple[dict[str, Any], list[RowIssue]]] = []
        unknown: str | None = None
        for keys, values in rows:
            try:
                mapped, issues = cde.prepare_sync(keys, values)
            except UnknownPrimaryKeyError as exc:
                unknown = exc.name
                break
            if sfmc_dates and not issues:
                cde.store_dates(mapped)
            prepared.append((mapped, issues))
        return prepared, unknown

    def apply_rowset(
        self,
        cde: CompiledDataExtension,
        rows: Sequence[tuple[dict[str, Any], dict[str, Any]]],
        bare_keys: frozenset[str] = frozenset(),
        *,
        sfmc_dates: bool = False,
    ) -> RowsetOutcome:
        """Upsert hub rows in order, stopping at the first failing row.

        Args:
            cde: Target DE.
            rows: ``(keys, values)`` pairs in request order.
            bare_keys: Folded key values of rows that are never saved (a bare 10006).
            sfmc_dates: Store Date values as SFMC does (`CompiledDataExtension.store_dates`).

        Returns:
            What was applied and why it stopped, if it did.
        """
        prepared, unknown = self._prepared_rowset(cde, rows, sfmc_dates=sfmc_dates)
        identities = [None if issues else cde.identity(mapped) for mapped, issues in prepared]
        de_id = cde.de.id
        with self.store.lock:
            state = self.store.fetch_rows(de_id, [i for i in identities if i is not None])
            dirty: dict[str, dict[str, Any]] = {}
            applied = 0
            failure: list[RowIssue] = []
            never_saved = False
            for (mapped, issues), ident in zip(prepared, identities, strict=True):
                if bare_keys and cde.is_never_saved(mapped, bare_keys):
                    never_saved = True
                    break
                if ident is None:
                    failure = issues
                    break
                row, merge_issues = self._merge(cde, state.get(ident), mapped)
                if row is None:
                    failure = merge_issues
                    break
                state[ident] = dirty[ident] = row
                applied += 1
            self.store.write_rows(de_id, dirty.items())
        if never_saved:
            return RowsetOutcome(applied=applied, issues=[], never_saved=True)
        if failure:
            return RowsetOutcome(applied=applied, issues=failure)
        return RowsetOutcome(applied=applied, issues=[], unknown_primary_key=unknown)

    def apply_async(
        self,
        cde: CompiledDataExtension,
        items: Sequence[dict[str, Any]],
        *,
        insert: bool,
        faults: JobFaults,
        clean: bool = False,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Apply an async job's rows, each independently.

        Args:
            cde: Target DE.
            items: Flat rows in submission order.
            insert: True for insert (duplicate keys fail), False for upsert.
            faults: The job's fault decisions.
            clean: The items are clean rows from `CompiledDataExtension.decode_clean_items`.

        Returns:
            ``(result_items, has_errors)`` with one result item per submitted row, in order.
        """
        if faults.error:
            return [JOB_ERROR_ITEM] * len(items), True
        results: list[dict[str, Any] | None] = [None] * len(items)
        pending = self._checked_rows(cde, items, results, faults=faults, clean=clean)
        ok_item = INSERTED_ITEM if insert else UPSERTED_ITEM
        de_id = cde.de.id
        with self.store.lock:
            state = self.store.fetch_rows(de_id, [ident for _, _, ident in pending])
            dirty: dict[str, Any] = {}
            for index, mapped, ident in pending:
                existing = state.get(ident)
                if insert and existing is not None:
                    results[index] = self._duplicate_item(cde, mapped)
                    continue
                if existing is None and clean:
                    row = mapped  # a new clean row: required columns checked when decoded
                else:
                    row, issues = self._merge(cde, existing, mapped)
                    if row is None:
                        results[index] = async_error_item(issues)
                        continue
                state[ident] = dirty[ident] = row
                results[index] = ok_item
            self.store.write_rows(de_id, dirty.items())
        final = [r if r is not None else JOB_ERROR_ITEM for r in results]
        has_errors = any(r["status"] != "OK" for r in final)
        return final, has_errors

    @staticmethod
    def _checked_rows(
        cde: CompiledDataExtension,
        items: Sequence[Any],
        results: list[dict[str, Any] | None],
        *,
        faults: JobFaults,
        clean: bool,
    ) -> list[tuple[int, Any, str]]:
        """Return ``(position, mapped row, identity)`` of the rows to apply.

        Rows that deadlock or fail their checks get their result item in ``results`` instead.
        """
        rng, deadlock_rate, bare_keys = faults.rng, faults.deadlock_rate, faults.bare_keys
        if clean and not deadlock_rate and not bare_keys and not faults.sfmc_dates:
            return list(zip(range(len(items)), items, cde.clean_identities(items), strict=True))
        never_saved = {
            "errorCode": ASYNC_ROW_ERROR_CODE,
            "message": unable_to_save_message(cde.de.id),
            "status": "Error",
        }
        pending: list[tuple[int, Any, str]] = []
        for index, item in enumerate(items):
            if deadlock_rate and rng.random() < deadlock_rate:
                results[index] = DEADLOCK_ITEM
                continue
            mapped, issues = (item, []) if clean else cde.prepare_flat(item)
            if bare_keys and cde.is_never_saved(mapped, bare_keys):
                results[index] = never_saved
            elif issues:
                results[index] = async_error_item(issues)
            else:
                if faults.sfmc_dates and type(mapped) is dict:
                    cde.store_dates(mapped)
                pending.append((index, mapped, cde.identity(mapped)))
        return pending

    @staticmethod
    def _duplicate_item(cde: CompiledDataExtension, mapped: Any) -> dict[str, Any]:
        if type(mapped) is not dict:
            mapped = cde.clean_row(mapped)
        de = cde.de
        table = f"C{int(de.id[:6], 16) % 100000}"
        values = ", ".join(str(mapped[pk.name]) for pk in cde.primary_keys)
        return {
            "errorCode": "UnexpectedError",
            "message": (
                f"Violation of PRIMARY KEY constraint 'PK_{table}_{de.id}'. Cannot insert "
                f"duplicate key in object '{table}.{de.key}'. The duplicate key value is "
                f"({values}).\r\nThe statement has been terminated."
            ),
            "status": "Error",
        }
