"""The row of a common Segment message, built and checked in one generated call.

Most Segment messages become exactly one Data Extension row (see
:meth:`~target_sfmc.routing.SegmentRouter.row_plan`) from the context's attributes and one
object's (traits or properties). For each destination and each set of that object's keys a
function is generated that reads every value, converts it as the mapping does, checks it
against its column as the destination's gate would, and builds the row as a Struct in one
call. It knows which names the gate sends and which it ignores, so the row skips the gate.

Such a function gives up (None) on anything it cannot build exactly as the mapping and the
gate would: a name the gate has not seen yet (the gate must add or ignore it first), a value
that does not surely fit its column, an empty key value, two keys of one name. The message
then takes the slower way, which decides and words any refusal. A function is rebuilt when
its gate's answers change.
"""

from __future__ import annotations

import decimal
from typing import TYPE_CHECKING, Any

from msgspec import UNSET, UnsetType

from target_sfmc.de_columns import DECIMAL, SIZED_TEXT
from target_sfmc.de_row_checks import fits_at_once
from target_sfmc.fastpath.rows import SharedTexts, attribute_row_type
from target_sfmc.fastpath.segment_lane import SegmentContext
from target_sfmc.mapping import (
    CONTACT_KEY,
    CONTEXT_ATTRIBUTES,
    CONTEXT_GROUPS,
    MappingError,
    clean_contact_key,
    is_dropped,
    title_cased,
    to_sfmc_value,
)
from target_sfmc.records import DataExtensionRow, folded_expression
from target_sfmc.routing import ROUTED_AT, routed_fields
from target_sfmc.settings_schema import DEFAULT_USER_ID_PROPERTIES

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from target_sfmc.column_gate import ColumnGate, StreamGates
    from target_sfmc.routing import SegmentRouter, SegmentRowPlan

_FAILED = object()
# Where a message's routed values hold what its row is made from.
_TYPE_AT, _EVENT_AT, _CONTEXT_AT = ROUTED_AT["type"], ROUTED_AT["event"], ROUTED_AT["context"]
_USER_ID_AT = ROUTED_AT[DEFAULT_USER_ID_PROPERTIES[0]]  # the first a Contact Key is taken from
_AS_IS = frozenset({str, int, bool})
# Contexts a row can be built from: objects, and decoded JSON values that add no attribute.
_CONTEXT_KINDS = frozenset(
    {dict, SegmentContext, type(None), UnsetType, str, int, bool, float, decimal.Decimal, list}
)
_EMPTY: dict[str, Any] = {}
_CONTEXT_NAMES = frozenset(name for _path, name in CONTEXT_ATTRIBUTES)
# Builders kept per stream before the oldest are dropped (keys sets that never repeat).
_MAX_BUILDERS = 1024


def _sent_value(value: Any) -> Any:
    """What the mapping sends for a value: itself, its conversion, None (left out) or _FAILED."""
    if type(value) in _AS_IS:
        return value
    try:
        sent = to_sfmc_value(value)
    except MappingError:
        return _FAILED
    return None if is_dropped(sent) else sent


def _any_sent(values: tuple[Any, ...]) -> bool:
    """Whether the mapping would send any of these values (or refuse one)."""
    return any(value is not None and _sent_value(value) is not None for value in values)


class _Builder:
    """The source of one generated row builder."""

    def __init__(self, gate: ColumnGate, shared: SharedTexts) -> None:
        self.gate = gate
        self.shared = shared
        self.lines: list[str] = []
        self.names: list[str] = []  # the row's fields, in order
        self.variables: dict[str, str] = {}  # field name -> local variable
        # Values of names the gate has not seen, checked together by :meth:`check_unseen`.
        self.unseen: list[str] = []
        self.namespace: dict[str, Any] = {
            "AS_IS": _AS_IS,
            "SENT_VALUE": _sent_value,
            "ANY_SENT": _any_sent,
            "FAILED": _FAILED,
            "Decimal": decimal.Decimal,
        }

    def take(self, name: str, expression: str, indent: str) -> None:
        """Read one value into the row, or give up when the gate would not send it as is.

        A name the gate has not seen is only noted: :meth:`check_unseen` checks such names
        together.
        """
        sends = self.gate.sends(name)
        if sends is False:
            return  # the gate ignores the name: never read
        if sends is None:  # the gate must see the name first: checked with its neighbours
            self.unseen.append(expression)
            return
        variable = f"a{len(self.names)}"
        add = self.lines.append
        add(f"{indent}{variable} = {expression}")
        column = self.gate.checked_column(name)
        if column is None:
            fits_as_is, fits = f"type({variable}) in AS_IS", None
        else:
            # A value that surely fits is one the mapping sends as it is (never a NaN).
            fits = fits_at_once(column, variable)
            fits_as_is = fits
            if column.type == DECIMAL:
                finite = f"type({variable}) is not Decimal or {variable}.is_finite()"
                fits_as_is = f"({fits}) and ({finite})"
        refused = f"{variable} is FAILED"
        if fits is not None:
            refused += f" or ({variable} is not None and not ({fits}))"
        # Anything else is converted as the mapping would (None stays None: no attribute).
        add(f"{indent}if not ({fits_as_is}) and {variable} is not None:")
        add(f"{indent}    {variable} = SENT_VALUE({variable})")
        add(f"{indent}    if {refused}:")
        add(f"{indent}        return None")
        shared = None
        if column is not None and column.type in SIZED_TEXT and column.length:
            shared = self.shared.table(name)  # the value is now text or None
        if shared is not None:
            self.namespace[f"SHARED_{variable}"] = shared.setdefault
            add(f"{indent}if {variable} is not None:")
            add(f"{indent}    {variable} = SHARED_{variable}({variable}, {variable})")
        self.variables[name] = variable
        self.names.append(name)

    def check_unseen(self, indent: str) -> None:
        """Give up when a name the gate has not seen yet has a value the mapping would send.

        Such names are mostly absent: one test sees that they all are.
        """
        if not self.unseen:
            return
        values = ", ".join(self.unseen)
        absent = " and ".join(f"{value} is None" for value in self.unseen)
        self.lines += [
            f"{indent}if not ({absent}) and ANY_SENT(({values},)):",
            f"{indent}    return None",
        ]
        self.unseen = []

    def context(self, kind: type) -> None:
        """Read the context's attributes first, in the table's order, as the mapping does.

        Args:
            kind: The context's type: a dict, the lane's :data:`SegmentContext` (read by
                attribute), or anything else (no attributes).
        """
        if kind is not dict and kind is not SegmentContext:
            return  # the row has no context attribute (all left None)
        struct = kind is SegmentContext
        lines = self.lines
        for key, own, leaves in CONTEXT_GROUPS:
            read = f"ctx.{key}" if struct else f"ctx.get({key!r})"
            if own is not None:
                self.take(own, read, "    ")
                continue
            self.check_unseen("    ")  # the context's own attributes read so far
            group = len(lines)
            lines += [
                f"    node = {read}",
                "    if node is not None:" if struct else "    if type(node) is dict:",
            ]
            before = len(self.names)
            for part, name in leaves:
                self.take(name, f"node.{part}" if struct else f"node.get({part!r})", "        ")
            self.check_unseen("        ")
            if len(lines) == group + 2:
                del lines[group:]  # the gate ignores every attribute of the group
            elif len(self.names) > before:
                lines.append("    else:")
                self.absent(self.names[before:], "        ")

    def absent(self, names: list[str], indent: str) -> None:
        """The row does not have these attributes (a context group that is no object)."""
        self.lines.append(f"{indent}{' = '.join(self.variables[name] for name in names)} = None")


def compile_row_builder(
    plan: SegmentRowPlan,
    gate: ColumnGate,
    keys: tuple[str, ...],
    context: type,
    shared: SharedTexts,
) -> Callable[[Any, dict[str, Any], str], DataExtensionRow | None] | None:
    """Generate the row builder of one destination, one set of attribute keys, one context.

    Args:
        plan: Where the rows go and what they are made of.
        gate: The destination's gate, as it is now.
        keys: The keys of the attributes object, in its order.
        context: The type of the context (a dict, the lane's :data:`SegmentContext`, or
            a value that adds no attribute).
        shared: The destination's shared text values, as they are now.

    Returns:
        ``(context, attributes, contact_key) -> row or None``, or None when no row of these
        keys can be built here (names that clash, a key column the row does not have).
    """
    if context not in _CONTEXT_KINDS:
        return None
    titles = [title_cased(key) for key in keys]
    named = [title for title in titles if title]
    if len(set(named)) < len(named) or _CONTEXT_NAMES & set(named) or CONTACT_KEY in named:
        return None  # a later value would replace an earlier one in place: the slower way
    if not gate.sends(CONTACT_KEY):
        return None
    source = _Builder(gate, shared)
    add = source.lines.append
    add("def build(ctx, attributes, ck):")
    source.context(context)
    if keys:
        values = ", ".join(f"s{index}" for index in range(len(keys)))
        add(f"    ({values},) = attributes.values()")
    for index, title in enumerate(titles):
        if title:
            source.take(title, f"s{index}", "    ")
    source.take(CONTACT_KEY, "ck", "    ")
    source.check_unseen("    ")
    key_values, identity = [], []
    for position, name in enumerate(plan.primary_keys):
        variable = source.variables.get(name)
        if variable is None:
            return None  # the row would miss a key column
        add(f"    if {variable} is None or {variable} == '':")
        add("        return None")
        key_values.append(f"KEYS[{position}]: {variable}")
        # The row's primary key (see DataExtensionRow.primary_key), computed here at once.
        identity.append(folded_expression(variable))
    row_type = attribute_row_type(source.names)
    fields = ", ".join(source.variables[name] for name in source.names)
    contact = "ck" if plan.create_contact else "None"
    add(
        f"    return ROW(DE_KEY, {{{', '.join(key_values)}}}, ROW_TYPE({fields}), {contact}, "
        f"known_primary_key=({', '.join(identity)},))"
    )
    source.namespace.update(
        ROW=DataExtensionRow,
        ROW_TYPE=row_type,
        DE_KEY=plan.data_extension_key,
        KEYS=plan.primary_keys,
    )
    exec("\n".join(source.lines), source.namespace)  # noqa: S102 - names go in as constants
    return source.namespace["build"]


class _Destination:
    """Where some messages' rows go: the plan, the gate, and the builders made for its state."""

    def __init__(self, plan: SegmentRowPlan, gate: ColumnGate) -> None:
        self.plan = plan
        self.gate = gate
        self.attributes_at = ROUTED_AT[plan.attributes_field]
        self.generation = gate.generation
        # (attribute keys, context type) -> its builder (None: none can be built).
        self.builders: dict[tuple[tuple[str, ...], type], Any] = {}
        self.shared = SharedTexts()

    def builder(self, keys: tuple[str, ...], context: type) -> Any:
        """The builder of these keys and context, made now if need be (None: none can be)."""
        if self.generation != self.gate.generation:  # the gate's answers changed
            self.generation = self.gate.generation
            self.builders.clear()
        elif len(self.builders) >= _MAX_BUILDERS:
            self.builders.clear()
        build = self.builders[keys, context] = compile_row_builder(
            self.plan, self.gate, keys, context, self.shared
        )
        return build


class SegmentRows:
    """A Segment stream's common rows, built by generated functions (see the module)."""

    def __init__(self, router: SegmentRouter, gates: StreamGates) -> None:
        """Keep the stream's routing and gates.

        Args:
            router: The stream's Segment routing.
            gates: The stream's gates (a destination without one takes the slower way).
        """
        self._router = router
        self._gates = gates
        # (type, event) as received -> where such messages' rows go (None: not built here).
        self._destinations: dict[tuple[Any, Any], _Destination | None] = {}
        self._by_plan: dict[SegmentRowPlan, _Destination] = {}

    def _destination(self, values: Sequence[Any], kind: Any, event: Any) -> Any:
        """Where a message's row goes, kept for its type and event when they are text."""
        plan = self._router.row_plan(routed_fields(values))
        gate = None if plan is None else self._gates.rows.get(plan.data_extension_key)
        found = None
        if plan is not None and gate is not None:
            found = self._by_plan.get(plan)
            if found is None:
                found = self._by_plan[plan] = _Destination(plan, gate)
        if type(kind) is str and (event is None or type(event) is str):
            if len(self._destinations) >= _MAX_BUILDERS:
                self._destinations.clear()
            self._destinations[kind, event] = found
        return found

    def row(self, values: Sequence[Any]) -> DataExtensionRow | None:
        """The row of a message, when it becomes one row built here.

        Args:
            values: The message's routed values (checked, dates parsed; see
                :data:`~target_sfmc.routing.ROUTED_AT`).

        Returns:
            The row, ready for its batch (it passed its gate), or None: take the slower way.
        """
        kind, event = values[_TYPE_AT], values[_EVENT_AT]
        if event is UNSET:  # routing reads a missing event as null
            event = None
        try:  # messages of a stream repeat a few types and events
            destination = self._destinations[kind, event]
        except (KeyError, TypeError):  # new, or not hashable
            destination = self._destination(values, kind, event)
        if destination is None:
            return None
        # Most messages have a user id that is their Contact Key.
        ck = clean_contact_key(values[_USER_ID_AT]) or self._router.contact_key_of(
            routed_fields(values)
        )
        if ck is None:
            return None
        attributes = values[destination.attributes_at]
        if attributes is None or attributes is UNSET:
            attributes = _EMPTY
        elif type(attributes) is not dict:
            return None
        context = values[_CONTEXT_AT]
        found = (tuple(attributes), type(context))
        build = destination.builders.get(found, _FAILED)
        if build is _FAILED or destination.generation != destination.gate.generation:
            build = destination.builder(*found)
        if build is None:
            return None
        shared = destination.shared
        shared.countdown -= 1
        if not shared.countdown and shared.check():
            destination.builders.clear()  # rebuilt without sharing the varied columns' values
        return build(context, attributes, ck)
