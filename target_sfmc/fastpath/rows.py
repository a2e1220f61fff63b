"""Rows built in one call: a msgspec Struct per stream schema that reads like a dict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from msgspec import UNSET
from msgspec.structs import astuple

if TYPE_CHECKING:
    from collections.abc import Sequence


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
