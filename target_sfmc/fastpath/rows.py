"""Rows built in one call, and the text values rows share.

A row is a msgspec Struct per stream schema that reads like a dict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from msgspec import UNSET
from msgspec.structs import astuple

if TYPE_CHECKING:
    from collections.abc import Sequence

# Distinct values a column's rows share before the column stops sharing them, and how many
# rows are built between looks at that (see SharedTexts).
MAX_SHARED_VALUES = 1000
SHARE_CHECK_ROWS = 1000


class AttributeRow(msgspec.Struct, omit_defaults=True, gc=False):
    """A row's attributes as a Struct: built in one call, encoded like the dict it stands for.

    Each subclass (see :func:`attribute_row_type`) has one field per Title Case name; a
    field left None or UNSET is an attribute the row does not have, exactly as a dict
    without that key. It reads like that dict (``get``, ``keys``, ``[]``, ``**``).
    """

    # Title Case name -> field name, set per subclass.
    _fields_by_name: ClassVar[dict[str, str]] = {}

    def get(self, name: str, default: Any = None) -> Any:
        """The attribute's value, or ``default`` when the row does not have it."""
        field = self._fields_by_name.get(name)
        value = None if field is None else getattr(self, field)
        return default if value is None or value is UNSET else value

    def __getitem__(self, name: str) -> Any:
        """The attribute's value; KeyError when the row does not have it."""
        value = self.get(name, UNSET)
        if value is UNSET:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        """Whether the row has the attribute (a value that is not None or UNSET)."""
        return isinstance(name, str) and self.get(name, UNSET) is not UNSET

    def __setitem__(self, name: str, value: Any) -> None:
        """Set an attribute the row type declares (the Contact Key, once it is known)."""
        setattr(self, self._fields_by_name[name], value)

    def items(self) -> list[tuple[str, Any]]:
        """The attributes the row has, in field order."""
        return [
            (name, value)
            for name, value in zip(self.__struct_encode_fields__, astuple(self), strict=True)
            if value is not None and value is not UNSET
        ]

    def keys(self) -> list[str]:
        """The names of the attributes the row has."""
        return [name for name, _ in self.items()]


def attribute_row_type(names: Sequence[str]) -> type[AttributeRow]:
    """A row type with one field per name, created positionally: ``row_type(*values)``.

    Args:
        names: Title Case names, all different.

    Returns:
        The subclass; its fields default to None (no attribute).
    """
    fields = {name: f"a{index}" for index, name in enumerate(names)}
    return msgspec.defstruct(  # type: ignore[return-value] # a subclass of its base
        "Row",
        [(field, Any, None) for field in fields.values()],
        bases=(AttributeRow,),
        rename={field: name for name, field in fields.items()},
        namespace={"_fields_by_name": fields},
    )


class SharedTexts:
    """One text object per distinct value of a column, shared by the rows that hold it.

    A row lives until SFMC confirms it, long after it was built: by then its objects have
    left the processor's cache, and encoding the request body and freeing the row read each
    of them from memory again. The rows of a stream repeat many values (a user agent, a
    locale, a plan, a campaign); rows sharing one object per value have far fewer objects to
    read. A column keeps up to ``MAX_SHARED_VALUES`` distinct values; one with more (an email,
    an IP address) stops sharing them, looked at every ``SHARE_CHECK_ROWS`` rows.
    """

    def __init__(self) -> None:
        """Share nothing yet."""
        self.tables: dict[str, dict[str, str]] = {}
        self.varied: set[str] = set()  # columns with too many distinct values to share
        self.countdown = SHARE_CHECK_ROWS

    def table(self, name: str) -> dict[str, str] | None:
        """The column's shared values (None: the column does not share them)."""
        if name in self.varied:
            return None
        table = self.tables.get(name)
        if table is None:
            table = self.tables[name] = {}
        return table

    def check(self) -> list[str]:
        """Stop sharing the values of columns that have too many.

        Returns:
            The columns that stopped sharing now.
        """
        self.countdown = SHARE_CHECK_ROWS
        varied = [name for name, table in self.tables.items() if len(table) > MAX_SHARED_VALUES]
        for name in varied:
            self.varied.add(name)
            del self.tables[name]
        return varied
