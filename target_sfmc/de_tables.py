"""The columns a stream's SCHEMA gives each Data Extension it writes, and its entry events.

Nothing here does I/O. Each destination gets a :class:`TableSpec`: its columns (by the type
rules of :mod:`target_sfmc.de_columns`), primary keys, the property shapes they came from, and
the columns that cannot be made as the schema asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from target_sfmc.dates import resolve_local_reference
from target_sfmc.de_columns import (
    BOOLEAN,
    CONTACT_KEY_LENGTH,
    TEXT,
    UUID_LENGTH,
    Column,
    ColumnRules,
    PropertyShape,
    property_shape,
)
from target_sfmc.mapping import CONTACT_KEY, CONTEXT_ATTRIBUTES, UUID_KEY, title_case
from target_sfmc.routing import track_primary_keys

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from target_sfmc.settings import StreamSettings, TargetSettings


@dataclass
class TableSpec:
    """The columns one destination gets from one stream, as its SCHEMA and settings say.

    ``columns`` maps each case-folded name to its column, in the order a created Data
    Extension lists them (primary keys first); ``shapes`` keeps the schema of each column that
    comes from a declared property; ``problems`` says which columns cannot be created as the
    schema asks, and why.
    """

    key: str
    name: str
    sendable: bool = False
    columns: dict[str, Column] = field(default_factory=dict)
    shapes: dict[str, PropertyShape] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    audience: bool = False  # an audience stream: every other attribute is a Boolean

    @property
    def primary_keys(self) -> tuple[str, ...]:
        """Names of the primary-key columns."""
        return tuple(c.name for c in self.columns.values() if c.primary_key)

    def add(
        self,
        column: Column | None,
        shape: PropertyShape | None = None,
        problem: str | None = None,
        *,
        replace: bool = False,
    ) -> None:
        """Add a column; one of the same name stays unless ``replace`` (keys always stay).

        Args:
            column: The column (None: nothing to add).
            shape: Its property's shape.
            problem: Why it cannot be created as the schema asks.
            replace: A later property of the same name wins, as in the mapping.
        """
        if column is None:
            return
        folded = column.name.casefold()
        existing = self.columns.get(folded)
        if existing is not None and (existing.primary_key or not replace):
            return
        self.columns[folded] = column
        self.shapes.pop(folded, None)
        self.problems.pop(folded, None)
        if shape is not None:
            self.shapes[folded] = shape
        if problem is not None:
            self.problems[folded] = problem

    def column_for(self, title: str, value: Any, rules: ColumnRules) -> Column:
        """The column an attribute gets when it is first seen in a record.

        Args:
            title: The attribute name.
            value: One of its values.
            rules: The type rules.

        Returns:
            The column the SCHEMA gives it, else one chosen from the value.
        """
        known = self.columns.get(title.casefold())
        if known is not None:
            return Column(known.name, known.type, known.length, known.scale)
        if self.audience and isinstance(value, bool):
            return Column(title, BOOLEAN)
        return rules.for_value(title, value)


def add_properties(
    spec: TableSpec,
    schema: Mapping[str, Any],
    root: Mapping[str, Any],
    rules: ColumnRules,
    *,
    email_property: str | None,
) -> None:
    """Add a column per scalar property of an object schema (Title Case names).

    Args:
        spec: The destination's columns (changed in place).
        schema: An object schema (the stream's, or its ``traits``/``properties``).
        root: The stream's schema.
        rules: The type rules.
        email_property: The property holding the email.
    """
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return
    for name, definition in properties.items():
        title = title_case(name)
        if not title or title.casefold() == CONTACT_KEY.casefold():
            continue
        shape = property_shape(definition, root, name)
        is_email = name == email_property or title.casefold() == "email"
        column, problem = rules.for_property(title, shape, is_email=is_email)
        spec.add(column, shape, problem, replace=True)


def add_context(spec: TableSpec, context: Any, root: Mapping[str, Any], rules: ColumnRules) -> None:
    """Add the Segment context attributes (the stream declares a ``context`` object).

    Args:
        spec: The destination's columns (changed in place).
        context: The ``context`` property's schema.
        root: The stream's schema.
        rules: The type rules.
    """
    context_schema = resolve_local_reference(context, dict(root), "context")
    for path, title in CONTEXT_ATTRIBUTES:
        node: Any = context_schema
        for part in path:
            properties = node.get("properties") if isinstance(node, dict) else None
            node = properties.get(part) if isinstance(properties, dict) else None
            node = resolve_local_reference(node, dict(root), "context") if node else None
        shape = property_shape(node, root, "context") if isinstance(node, dict) else None
        if title.casefold() not in spec.columns:
            spec.add(rules.for_context(title, shape), shape)


def key_column(
    title: str, properties: Mapping[str, Any], root: Mapping[str, Any], rules: ColumnRules
) -> tuple[Column, PropertyShape | None, str | None]:
    """A primary-key column: from the property it names, else Contact Key, Uuid or Text.

    Args:
        title: The primary key's Title Case name.
        properties: The properties that could hold it (name -> schema).
        root: The stream's schema.
        rules: The type rules.

    Returns:
        ``(column, shape, problem)``.
    """
    if title == CONTACT_KEY:
        return (
            Column(CONTACT_KEY, TEXT, CONTACT_KEY_LENGTH, primary_key=True, nullable=False),
            None,
            None,
        )
    if title == UUID_KEY:
        return Column(UUID_KEY, TEXT, UUID_LENGTH, primary_key=True, nullable=False), None, None
    for name, definition in reversed(list(properties.items())):
        if title_case(name) == title:
            shape = property_shape(definition, root, name)
            column, problem = rules.for_property(title, shape, primary_key=True)
            if column is not None:
                if column.type == TEXT and column.length is None:
                    column = rules.text(title, primary_key=True)
                return column, shape, problem
    return rules.text(title, primary_key=True), None, None


def contact_key_column() -> Column:
    """``Contact Key`` where it is not the primary key.

    Returns:
        Nullable Text of 254 characters.
    """
    return Column(CONTACT_KEY, TEXT, CONTACT_KEY_LENGTH)


def declares_any(schema: Mapping[str, Any], names: Iterable[str]) -> bool:
    """Tell whether an object schema declares one of the names.

    Args:
        schema: An object schema.
        names: Property names.

    Returns:
        True when one of them is a declared property.
    """
    properties = schema.get("properties")
    return isinstance(properties, dict) and any(name in properties for name in names)


def _object_schema(definition: Any, root: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """A property's object schema (through ``$ref``); empty when it declares nothing."""
    resolved = resolve_local_reference(definition, dict(root), name)
    return resolved if isinstance(resolved, dict) else {}


def stream_tables(
    stream: StreamSettings,
    settings: TargetSettings,
    schema: Mapping[str, Any],
    key_properties: list[str],
    *,
    audiences: Iterable[str] = (),
) -> tuple[list[TableSpec], list[TableSpec]]:
    """The columns each destination of a stream gets, as its SCHEMA and settings say.

    Identify: ``Contact Key`` and the traits, and the context attributes when the stream
    declares ``context``. Track: the primary keys, ``Contact Key`` when the stream carries a
    user id or email, the properties and the context attributes. Audience: ``Contact Key``
    and one Boolean per audience. Segment streams: the identify Data Extension from
    ``traits``, each conversion event's from ``properties``.

    Args:
        stream: The stream's settings.
        settings: The target settings.
        schema: The stream's SCHEMA.
        key_properties: The stream's key properties.
        audiences: Audience names seen in the stream's records (audience streams).

    Returns:
        The Data Extensions' columns, and the Journey entry events' ``Data`` attributes (a
        spec per event definition key).
    """
    des = settings.data_extensions
    rules = ColumnRules(des.text_length, des.decimal_precision, des.decimal_scale)
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    if stream.type == "segment":
        return _segment_tables(settings, schema, properties, rules)
    if stream.type == "api_event":
        event = TableSpec(stream.event_definition_key or "", stream.event_definition_key or "")
        add_properties(event, schema, schema, rules, email_property=stream.email_property)
        if "context" in properties:
            add_context(event, properties["context"], schema, rules)
        return [], [event]
    key = stream.data_extension_key or ""
    spec = TableSpec(key, stream.data_extension_name or key)
    if stream.type in {"identify", "audience"}:
        spec.sendable = True
        spec.add(key_column(CONTACT_KEY, properties, schema, rules)[0])
        if stream.type == "audience":
            spec.audience = True
            for audience in audiences:
                spec.add(Column(title_case(audience), BOOLEAN))
            return [spec], []
    else:
        primary_keys = (
            (UUID_KEY,) if stream.uuid_primary_key else track_primary_keys(stream, key_properties)
        )
        for primary_key in primary_keys:
            column, shape, problem = key_column(primary_key, properties, schema, rules)
            spec.add(column, shape, problem)
        if declares_any(schema, (*stream.user_id_properties, stream.email_property)):
            spec.add(contact_key_column())
    add_properties(spec, schema, schema, rules, email_property=stream.email_property)
    if "context" in properties:
        add_context(spec, properties["context"], schema, rules)
    return [spec], []


def _segment_tables(
    settings: TargetSettings,
    schema: Mapping[str, Any],
    properties: Mapping[str, Any],
    rules: ColumnRules,
) -> tuple[list[TableSpec], list[TableSpec]]:
    context = properties.get("context")
    traits = _object_schema(properties.get("traits"), schema, "traits")
    event_properties = _object_schema(properties.get("properties"), schema, "properties")
    declared = event_properties.get("properties")
    declared = declared if isinstance(declared, dict) else {}
    tables: dict[str, TableSpec] = {}
    identify_key = settings.identify_data_extension_key
    if identify_key:
        spec = tables[identify_key.casefold()] = TableSpec(
            identify_key, identify_key, sendable=True
        )
        spec.add(Column(CONTACT_KEY, TEXT, CONTACT_KEY_LENGTH, primary_key=True, nullable=False))
        add_properties(spec, traits, schema, rules, email_property="email")
        if context is not None:
            add_context(spec, context, schema, rules)
    for conversion in settings.conversion_events.values():
        key = conversion.data_extension_key
        spec = tables.setdefault(key.casefold(), TableSpec(key, key))
        primary_keys = (UUID_KEY,) if conversion.uuid_primary_key else conversion.primary_keys
        for primary_key in primary_keys:
            column, shape, problem = key_column(primary_key, declared, schema, rules)
            spec.add(column, shape, problem)
        spec.add(contact_key_column())
        add_properties(spec, event_properties, schema, rules, email_property="email")
        if context is not None:
            add_context(spec, context, schema, rules)
    events: dict[str, TableSpec] = {}
    for definition_key in settings.api_events.values():
        event = events.setdefault(definition_key, TableSpec(definition_key, definition_key))
        add_properties(event, event_properties, schema, rules, email_property="email")
        if context is not None:
            add_context(event, context, schema, rules)
    return list(tables.values()), list(events.values())


# -- one compiled check per row shape -----------------------------------------------------------
