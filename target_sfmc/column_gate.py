"""The gate every row and entry event passes: its destination's columns, values that fit.

Attributes the Data Extension has no column for are not sent and are counted per stream (or,
where the run may, the columns are added first); a value that cannot fit its column makes the
row a refusal before any request. A lane's decode holds what it can of each value to its column,
and the gate then checks only the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from target_sfmc.de_columns import CONTEXT_FOLDED, INT32_MAX, INT32_MIN
from target_sfmc.de_row_checks import compile_projection, compile_row_check
from target_sfmc.de_values import always_fits, value_check
from target_sfmc.fastpath.rows import AttributeRow
from target_sfmc.mapping import title_case
from target_sfmc.records import DataExtensionRow, JourneyEvent, MappingRefusal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from target_sfmc.accounting import RunReport
    from target_sfmc.data_extensions import DataExtension, DataExtensionCatalog
    from target_sfmc.de_columns import Column
    from target_sfmc.de_tables import TableSpec
    from target_sfmc.fastpath.lanes import RecordLane
    from target_sfmc.records import Attributes, Outcome


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
        # Changes whenever a name is accepted or ignored (what was built on the old answers
        # of :meth:`sends` and :meth:`checked_column` is then out of date).
        self.generation = 0
        for column in de.columns.values():
            self._accept(column.name)
        for folded, column in spec.columns.items():
            if folded in de.columns:
                self._accept(column.name)

    def sends(self, name: str) -> bool | None:
        """Whether an attribute is sent: True (a column), False (ignored), None (not seen yet).

        Args:
            name: The attribute's name, as the mapping writes it.

        Returns:
            True, False or None.
        """
        if name in self._known:
            return True
        return False if name in self._ignored else None

    def checked_column(self, name: str) -> Column | None:
        """The column an attribute's values are checked against (None: they always fit).

        Args:
            name: The name of an attribute the gate sends.

        Returns:
            The column, when its values need a check.
        """
        found = self._checks.get(name)
        return None if found is None else found[0]

    def _accept(self, name: str) -> None:
        """Send the attribute (its column exists); check its values unless they always fit."""
        self.generation += 1
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
        self.generation += 1
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
