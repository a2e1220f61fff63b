"""The gate every row passes: only the Data Extension's columns, only values that fit."""

from __future__ import annotations

import decimal
from types import SimpleNamespace

from target_sfmc.column_gate import ColumnGate, StreamGates
from target_sfmc.data_extensions import DataExtension
from target_sfmc.de_columns import Column
from target_sfmc.de_tables import TableSpec
from target_sfmc.fastpath.rows import attribute_row_type
from target_sfmc.records import DataExtensionRow, JourneyEvent, MappingRefusal, Skipped

COLUMNS = [
    Column("Contact Key", "Text", 254, primary_key=True, nullable=False),
    Column("Plan", "Text", 5),
    Column("Logins", "Number"),
    Column("Score", "Decimal", 5, 2),
]


class Report:
    def __init__(self):
        self.ignored = []

    def ignore_attribute(self, stream, name, why):
        self.ignored.append((stream, name, why))


def gate(report=None, *, entry_event=False):
    de = DataExtension("USERS", "id-1", "USERS", {c.name.casefold(): c for c in COLUMNS})
    spec = TableSpec("USERS", "USERS")
    spec.add(COLUMNS[0])
    return ColumnGate(
        None, de, spec, "users", report or Report(), can_add=False, entry_event=entry_event
    )


def row(values):
    return DataExtensionRow("USERS", {"Contact Key": "a"}, values)


def test_dict_rows_keep_only_columns_and_count_the_others_once():
    report = Report()
    checked = gate(report)
    for _ in range(3):
        admitted = checked.admit_row(row({"Contact Key": "a", "Plan": "pro", "Loyalty": "x"}))
        assert admitted.values == {"Contact Key": "a", "Plan": "pro"}
    assert [name for _stream, name, _why in report.ignored] == ["Loyalty"]
    assert "data extension 'USERS' has no such column" in report.ignored[0][2]


def test_names_compare_without_case():
    admitted = gate().admit_row(row({"Contact Key": "a", "PLAN": "pro"}))
    assert admitted.values == {"Contact Key": "a", "PLAN": "pro"}


def test_a_value_that_cannot_fit_is_a_refusal_naming_the_column_never_the_value():
    refused = gate().admit_row(row({"Contact Key": "a", "Plan": "enterprise-secret"}))
    assert isinstance(refused, MappingRefusal)
    assert refused.message == (
        "The value for column [Plan] is too long: the column is Text of 5 characters in data "
        "extension [USERS]."
    )
    assert refused.destination == "USERS"
    refused = gate().admit_row(row({"Contact Key": "a", "Score": decimal.Decimal("1.234")}))
    assert "has too many digits after the point" in refused.message


def test_lane_rows_fast_path_projection_and_trust():
    report = Report()
    checked = gate(report)
    row_type = attribute_row_type(["Plan", "Logins", "Loyalty", "Contact Key"])
    rows = [row_type("pro", 3, "gold", "a"), row_type("max", None, None, "b")]
    for values in rows:
        admitted = checked.admit_row(row(values))
        assert "Loyalty" not in admitted.values
    assert admitted.values == {"Plan": "max", "Contact Key": "b"}
    assert len(report.ignored) == 1
    too_long = checked.admit_row(row(row_type("enterprise", 1, None, "c")))
    assert isinstance(too_long, MappingRefusal)
    # A lane whose decode held Plan to its length: its rows are not checked again for it.
    lane = SimpleNamespace(row_type=row_type, guaranteed=frozenset({"Plan"}))
    checked.trust_lane(lane)
    assert not isinstance(
        checked.admit_row(row(row_type("enterprise", 1, None, "c"))), MappingRefusal
    )
    assert isinstance(checked.admit_row(row(row_type("ok", 2**31, None, "c"))), MappingRefusal)


def test_every_name_a_column_takes_the_compiled_fast_path():
    checked = gate()
    row_type = attribute_row_type(["Plan", "Logins", "Contact Key"])
    values = row_type("pro", 3, "a")
    first = row(values)
    assert checked.admit_row(first) is first
    assert row_type in checked._fast
    assert checked.admit_row(row(values)).values is values  # not copied
    assert isinstance(checked.admit_row(row(row_type("pro", "many", "a"))), MappingRefusal)


def test_lane_constraints_name_text_lengths_and_number_ranges():
    schema = {"properties": {"plan": {}, "logins": {}, "score": {}, "contact_key": {}}}
    constraints = gate().lane_constraints(schema)
    assert set(constraints) == {"plan", "logins", "contact_key"}
    assert constraints["plan"][0] is str
    assert constraints["plan"][1].max_length == 5
    assert (constraints["logins"][1].ge, constraints["logins"][1].le) == (-(2**31), 2**31 - 1)


def test_entry_events_keep_only_the_entry_columns():
    report = Report()
    gates = StreamGates(events={"EV": gate(report, entry_event=True)})
    event = gates.admit(JourneyEvent("EV", "ck", {"Plan": "pro", "Extra": 1}))
    assert event.data == {"Plan": "pro"}
    assert "SFMC would refuse the event" in report.ignored[0][2]
    refused = gates.admit(JourneyEvent("EV", "ck", {"Plan": "far too long"}, secondary=True))
    assert isinstance(refused, MappingRefusal)
    assert refused.secondary
    assert refused.row == {"ContactKey": "ck", "Data": {"Plan": "far too long"}}
    assert "the entry event's data extension [USERS]" in refused.message
    skipped = Skipped("missing_identifier")
    assert gates.admit(skipped) is skipped
