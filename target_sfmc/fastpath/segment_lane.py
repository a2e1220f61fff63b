"""A lane for Segment-format streams: decode a message's routed fields, check it, route it.

A Segment message is routed by a few of its fields (:data:`SEGMENT_ROUTED_FIELDS`); the
others are only validated. The lane decodes a message's JSON text into a per-schema msgspec
Struct holding those fields and the properties its validation checks (any other property is
skipped without being built), checks types and dates as the general path's validation would,
then hands the routed fields to the general path's own rules
(:meth:`~target_sfmc.routing.SegmentRouter.route_fields`). A message those rules cannot route
from its fields alone (a skipped type or event, a Uuid key made from the whole message), or
one the lane cannot check exactly as the general path would, is declined and goes the general
way, which decides and words any error.
"""

from __future__ import annotations

import decimal
from typing import TYPE_CHECKING, Any

import msgspec
from msgspec import UNSET, UnsetType
from msgspec.structs import astuple

from target_sfmc.dates import (
    datelike_properties,
    nested_datelike_properties,
    parse_nested_datelike,
)
from target_sfmc.fastpath.lanes import (
    SDK_METADATA,
    DecodingLane,
    exact_type,
    number_check_lines,
    own_schema_check,
    record_decoder,
    struct_field_type,
)
from target_sfmc.mapping import CONTEXT_GROUPS, MappingError
from target_sfmc.routing import ROUTED_AT, SEGMENT_ROUTED_FIELDS, routed_fields
from target_sfmc.validation import type_table

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from target_sfmc.dates import NestedField
    from target_sfmc.records import Outcome


def _context_type() -> type:
    """A Struct holding what routing reads of a Segment ``context`` (the rest is skipped).

    Routing reads the context's attributes (the context table, grouped as
    :data:`~target_sfmc.mapping.CONTEXT_GROUPS`) and the email of its ``traits``. A context
    whose groups (``app``, ``campaign``, ...) are not objects does not decode into it: the
    message then goes the general way.
    """
    fields: list[tuple[str, Any, Any]] = []
    for key, own, leaves in (*CONTEXT_GROUPS, ("traits", None, (("email", ""),))):
        if own is not None:
            fields.append((key, Any, None))
            continue
        group_type = msgspec.defstruct(
            f"SegmentContext{key.title()}", [(part, Any, None) for part, _ in leaves], gc=False
        )
        fields.append((key, group_type | None, None))
    return msgspec.defstruct("SegmentContext", fields, gc=False)


SegmentContext = _context_type()


def _context_field_type(schema: dict[str, Any], allowed: frozenset[type]) -> Any:
    """How a checked ``context`` of these types decodes: only what routing reads, if it can."""
    nested_dates = any(field[0] == "context" for field in nested_datelike_properties(schema))
    if nested_dates or dict not in allowed or not allowed <= {dict, type(None)}:
        return struct_field_type(allowed, None)[0]
    return SegmentContext | None if type(None) in allowed else SegmentContext


def _plain_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Routed fields with a decoded context as the object it stands for (as routing reads it).

    Args:
        fields: Routed fields by name (:func:`~target_sfmc.routing.routed_fields`).

    Returns:
        The same fields; a :data:`SegmentContext` becomes a dict of what it holds.
    """
    context = fields.get("context")
    if type(context) is not SegmentContext:
        return fields
    plain = {
        name: msgspec.structs.asdict(value) if isinstance(value, msgspec.Struct) else value
        for name, value in msgspec.structs.asdict(context).items()  # type: ignore[arg-type]
    }
    return {**fields, "context": plain}


class SegmentLane(DecodingLane["list[Outcome]"]):
    """Turns the JSON text of one Segment message into its outcomes, or declines.

    ``map`` gives the outcomes the general path would give the message, or None when the
    general path must take it.

    Build one with :func:`compile_segment_lane`. A property that may be absent and is checked
    on its own decodes to UNSET when absent (the general path checks only present values).
    """

    def __init__(
        self,
        decode: Callable[[msgspec.Raw | bytes | str], Any],
        routed: Sequence[tuple[str, int]],
        number_checks: Sequence[tuple[int, frozenset[type]]],
        value_checks: Sequence[tuple[int, Callable[[Any], Any]]],
        dates: Sequence[tuple[int, str, Callable[[Any], Any]]],
        nested_dates: tuple[NestedField, ...],
        route: Callable[[Mapping[str, Any]], list[Outcome] | None],
    ) -> None:
        """Keep the precomputed parts (see :func:`compile_segment_lane`)."""
        self._decode = decode
        self._routed = tuple(routed)
        self._number_checks = tuple(number_checks)
        self._value_checks = tuple(value_checks)
        self._dates = tuple(dates)
        self._nested_dates = nested_dates
        self._route = route
        self.routed_of = self._compile_routed_of()

    def map_decoded(self, message: Any) -> list[Outcome] | None:
        """The outcomes of a decoded message, or None when the general path must take it.

        Args:
            message: A message decoded into :attr:`record_type`.

        Returns:
            What :meth:`map` returns.
        """
        values = self.routed_of(message)
        return None if values is None else self.outcomes_of(routed_fields(values))

    def outcomes_of(self, fields: dict[str, Any]) -> list[Outcome] | None:
        """The outcomes of a message's routed fields, or None when the general path must decide.

        Args:
            fields: Routed fields by name (:func:`~target_sfmc.routing.routed_fields`).

        Returns:
            The outcomes the general path would give the message, or None.
        """
        try:
            return self._route(_plain_fields(fields))
        except MappingError:
            return None

    def _compile_routed_of(self) -> Callable[[Any], tuple[Any, ...] | None]:
        """The lane's ``routed_of``: its checks unrolled into one function.

        The generated function takes a message decoded into :attr:`record_type` and returns
        the values of its routed fields in :data:`~target_sfmc.routing.ROUTED_AT` order, as
        the general path would route them (dates parsed; a missing field is None, or UNSET
        when it is checked on its own or the message Struct does not hold it), or None when
        a check refuses it.
        """
        lines = ["def routed_of(message):", "    v = astuple(message)"]
        lines += number_check_lines(self._number_checks)
        for index, _check in self._value_checks:
            lines += [
                f"    if v[{int(index)}] is not UNSET:",
                "        try:",
                f"            VALUE_CHECKS[{int(index)}](v[{int(index)}])",
                "        except Exception:",  # any refusal sends the message the general way
                "            return None",
            ]
        for index, _kind, _parse in self._dates:  # checked only: routing reads no date
            lines += [
                f"    if v[{int(index)}] is not None and v[{int(index)}] is not UNSET:",
                "        try:",
                f"            DATES[{int(index)}](v[{int(index)}])",
                "        except (ValueError, TypeError):",
                "            return None",
            ]
        # Routing reads a missing field as null: a field missing from the message decodes to
        # None, except one that decodes to UNSET when missing (checked on its own).
        at = dict(self._routed)
        values = [f"v[{int(at[name])}]" if name in at else "UNSET" for name in ROUTED_AT]
        # Nested dates are parsed in place, within the routed objects holding them.
        parents = {parent for parent, *_ in self._nested_dates if parent in ROUTED_AT}
        if parents:
            holders = ", ".join(f"{name!r}: {values[ROUTED_AT[name]]}" for name in sorted(parents))
            lines.append(f"    parse_nested_datelike({{{holders}}}, NESTED_DATES)")
        lines.append(f"    return ({', '.join(values)},)")
        namespace: dict[str, Any] = {
            "astuple": astuple,
            "UNSET": UNSET,
            "parse_nested_datelike": parse_nested_datelike,
            "ALLOWED": dict(self._number_checks),
            "VALUE_CHECKS": dict(self._value_checks),
            "DATES": {index: parse for index, _kind, parse in self._dates},
            "NESTED_DATES": self._nested_dates,
        }
        exec("\n".join(lines), namespace)  # noqa: S102 - code built above from integers only
        return namespace["routed_of"]


def compile_segment_lane(  # noqa: C901, PLR0912 - one decision per kind of property
    schema: dict[str, Any],
    key_properties: Sequence[str],
    *,
    validate: bool,
    route: Callable[[Mapping[str, Any]], list[Outcome] | None],
) -> SegmentLane | None:
    """Build the lane of a Segment-format stream, when its schema allows one.

    Args:
        schema: The stream's schema.
        key_properties: The stream's key properties (each message must carry them).
        validate: Whether records are validated (``validate_records``).
        route: Routes a message's routed fields; None when it needs the whole message.

    Returns:
        The lane, or None when the schema has a property the lane cannot check as the
        general path does (a reference to the rest of the schema, a schema that does not
        compile), a routed field holding dates, or key or required properties it does not
        declare.
    """
    table = type_table(schema)
    if table is None:
        return None
    allowed_by_name, required, closed = table
    must_be_present = {*key_properties, *(required if validate else ())}
    if not must_be_present <= set(allowed_by_name) - SDK_METADATA:
        return None
    # The SDK removes its metadata properties before it validates or parses dates.
    dates = {
        name: (kind, parse)
        for name, kind, parse in datelike_properties(schema)
        if name not in SDK_METADATA
    }
    if dates.keys() & set(SEGMENT_ROUTED_FIELDS):
        return None  # the general path would route the parsed value
    # With validation, a closed schema refuses undeclared properties: every declared one is
    # then decoded, and anything else fails the decode. Otherwise undeclared ones are skipped.
    forbid_unknown = validate and closed
    definitions = schema["properties"]
    names: list[str] = []
    fields: list[tuple[str, Any, Any] | tuple[str, Any]] = []
    number_checks: list[tuple[int, frozenset[type]]] = []
    value_checks: list[tuple[int, Callable[[Any], Any]]] = []
    for name, allowed in allowed_by_name.items():
        checked = validate and name not in SDK_METADATA
        needed = name in SEGMENT_ROUTED_FIELDS or name in must_be_present or name in dates
        if not checked and not needed and not forbid_unknown:
            continue  # skipped by the decode
        index = len(names)
        names.append(name)
        field_type: Any = Any if needed else msgspec.Raw
        default: Any = None
        if not checked:
            pass
        elif allowed is None and not needed and (exact := exact_type(definitions[name])):
            field_type = exact  # held by the decode itself, then dropped
        elif allowed is None:  # keywords beyond types: the property's own schema checks it
            check = own_schema_check(schema, name)
            if check is None:
                return None
            field_type, default = Any, UNSET
            value_checks.append((index, check))
        elif decimal.Decimal in allowed:
            # Null is checked here, so a missing non-nullable number must differ from null.
            accepted = allowed
            if type(None) not in allowed:
                default, accepted = UNSET, allowed | {UnsetType}
            field_type = Any
            number_checks.append((index, accepted))
        elif name == "context":
            field_type = _context_field_type(schema, allowed)
        else:
            field_type, _ = struct_field_type(allowed, None)
        # A missing key or required property fails the decode: the general path words it.
        fields.append(
            (f"f{index}", field_type)
            if name in must_be_present
            else (f"f{index}", field_type, default)
        )
    if not forbid_unknown:
        for name in SEGMENT_ROUTED_FIELDS:
            if name not in allowed_by_name:
                fields.append((f"f{len(names)}", Any, None))
                names.append(name)
    at = {name: index for index, name in enumerate(names)}
    decode = record_decoder("SegmentLaneMessage", fields, names, forbid_unknown=forbid_unknown)
    if decode is None:
        return None
    routed = [(name, at[name]) for name in SEGMENT_ROUTED_FIELDS if name in at]
    return SegmentLane(
        decode=decode,
        routed=routed,
        number_checks=number_checks,
        value_checks=value_checks,
        dates=[(at[name], kind, parse) for name, (kind, parse) in dates.items()],
        nested_dates=tuple(field for field in nested_datelike_properties(schema) if field[0] in at),
        route=route,
    )
