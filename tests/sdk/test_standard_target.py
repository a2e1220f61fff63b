"""singer-sdk standard target tests, run against the bundled SFMC emulator over real HTTP.

Every standard test of ``singer_sdk.testing.target_tests`` is subclassed with a ``validate()``
that reads back what the emulator stored: Title Case column names, nested values
dropped, duplicate keys upserted to one row with the last values, Unicode kept exactly, and
stream names decoupled from Data Extension keys through ``streams`` in the config.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from singer_sdk.testing import get_target_test_class
from singer_sdk.testing.suites import SingerTestSuite
from singer_sdk.testing.target_tests import (
    TargetArrayData,
    TargetCamelcaseComplexSchema,
    TargetCamelcaseTest,
    TargetCliPrintsTest,
    TargetDuplicateRecords,
    TargetEncodedStringData,
    TargetInvalidSchemaTest,
    TargetNoPrimaryKeys,
    TargetOptionalAttributes,
    TargetPrimaryKeyUpdates,
    TargetRecordBeforeSchemaTest,
    TargetRecordMissingKeyProperty,
    TargetRecordMissingOptionalFields,
    TargetSchemaNoProperties,
    TargetSchemaUpdates,
    TargetSpecialCharsInAttributes,
)

from target_sfmc.emulator import SfmcEmulator
from target_sfmc.target import TargetSfmc

CLIENT_ID = "sdk-standard-tests"
CLIENT_SECRET = "sdk-standard-tests-secret"
SUBDOMAIN = "mc563885gzs27c5t9-63k636ttgm"  # 28 characters, starts with "mc"


# --------------------------------------------------------------------------------------------
# One Data Extension per SDK test stream
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamDE:
    """How one SDK test stream is loaded: its DE key, DE columns and stream settings."""

    key: str
    fields: tuple[tuple[str, str], ...]  # (column, SFMC type); the first ones are primary keys
    primary_keys: tuple[str, ...]
    uuid_primary_key: bool = False

    def definition(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "fields": [
                {"name": name, "type": ftype, "primary_key": name in self.primary_keys}
                for name, ftype in self.fields
            ],
        }

    def stream_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"type": "track", "data_extension_key": self.key}
        if self.uuid_primary_key:
            config["uuid_primary_key"] = True
        return config


def _keyed(key: str, pk: tuple[str, str], *fields: tuple[str, str]) -> StreamDE:
    """A DE whose primary key is the stream's (single) key property, title-cased."""
    return StreamDE(key=key, fields=(pk, *fields), primary_keys=(pk[0],))


def _uuid_keyed(key: str, *fields: tuple[str, str]) -> StreamDE:
    """A DE for a stream without key properties: primary key ``Uuid``."""
    return StreamDE(
        key=key, fields=(("Uuid", "Text"), *fields), primary_keys=("Uuid",), uuid_primary_key=True
    )


# Columns that would only receive a value if the target wrongly sent a nested object or array
# (``Fruits``, ``Info`` of test_strings_in_objects, ``Strings``, ``Object Store``, ``D``,
# ``A 4``, ``A 5``) are defined on purpose: the emulator silently ignores unknown columns, so
# defining them is what lets validate() see a nested value that should have been dropped.
SDK_STREAMS: dict[str, StreamDE] = {
    # array_data
    "test_array_data": _keyed("SDK_ARRAY_DATA", ("Id", "Number"), ("Fruits", "Text")),
    # camelcase_complex_schema (SCHEMA messages only, no records)
    "ForecastingTypeToCategory": _keyed(
        "SDK_FORECASTING_TYPE_TO_CATEGORY",
        ("Id", "Text"),
        ("Is Deleted", "Boolean"),
        ("Created Date", "Date"),
        ("Created By Id", "Text"),
        ("Last Modified Date", "Date"),
        ("Last Modified By Id", "Text"),
        ("System Modstamp", "Date"),
        ("Forecasting Type Id", "Text"),
        ("Forecasting Item Category", "Text"),
        ("Display Position", "Number"),
        ("Is Adjustable", "Boolean"),
        ("Is Owner Adjustable", "Boolean"),
        ("Age", "Number"),
        ("New Camel Cased Attribute", "Text"),
        ("Attribute Startswith Underscore", "Text"),
    ),
    # camelcase
    "TestCamelcase": _keyed("SDK_CAMELCASE", ("Id", "Text"), ("Client Name", "Text")),
    # duplicate_records
    "test_duplicate_records": _keyed(
        "SDK_DUPLICATE_RECORDS", ("Id", "Number"), ("Metric", "Number")
    ),
    # encoded_string_data
    "test_strings": _keyed("SDK_STRINGS", ("Id", "Number"), ("Info", "Text")),
    "test_strings_in_objects": _keyed("SDK_STRINGS_IN_OBJECTS", ("Id", "Number"), ("Info", "Text")),
    "test_strings_in_arrays": _keyed(
        "SDK_STRINGS_IN_ARRAYS", ("Id", "Number"), ("Strings", "Text")
    ),
    # invalid_schema (the SCHEMA has no "properties"; the SDK refuses it before any sink)
    "test_invalid_schema": _uuid_keyed("SDK_INVALID_SCHEMA"),
    # no_primary_keys
    "test_no_pk": _uuid_keyed("SDK_NO_PK", ("Id", "Number"), ("Metric", "Number")),
    # optional_attributes
    "test_optional_attributes": _keyed(
        "SDK_OPTIONAL_ATTRIBUTES", ("Id", "Number"), ("Optional", "Text")
    ),
    # pk_updates: the SDK file puts "key_properties" *inside* "schema", so both SCHEMA
    # messages reach the target with no key properties (the second one still replaces the
    # sink, because the schema dict changed). No key properties -> Uuid primary key.
    "example_stream": _uuid_keyed(
        "SDK_PK_UPDATES", ("Id", "Number"), ("Name", "Text"), ("Email", "Text")
    ),
    # record_before_schema
    "test_record_before_schema": _keyed(
        "SDK_RECORD_BEFORE_SCHEMA", ("Id", "Number"), ("Metric", "Number")
    ),
    # record_missing_fields
    "record_missing_fields": _keyed(
        "SDK_RECORD_MISSING_FIELDS", ("Id", "Number"), ("Optional", "Text")
    ),
    # record_missing_key_property
    "test_record_missing_key_property": _keyed(
        "SDK_RECORD_MISSING_KEY_PROPERTY", ("Id", "Number"), ("Metric", "Number")
    ),
    # schema_no_properties
    "test_object_schema_with_properties": _uuid_keyed(
        "SDK_OBJECT_SCHEMA_WITH_PROPERTIES", ("Object Store", "Text")
    ),
    "test_object_schema_no_properties": _uuid_keyed(
        "SDK_OBJECT_SCHEMA_NO_PROPERTIES", ("Object Store", "Text")
    ),
    # schema_updates ("a1" title-cases to "A 1": letters and digits are split)
    "test_schema_updates": _keyed(
        "SDK_SCHEMA_UPDATES",
        ("Id", "Number"),
        ("A 1", "Decimal"),
        ("A 2", "Text"),
        ("A 3", "Boolean"),
        ("A 4", "Text"),
        ("A 5", "Text"),
        ("A 6", "Number"),
    ),
    # special_chars_in_attributes: the stream name is no valid DE key; the config maps it.
    "test:SpecialChars!in?attributes": _keyed(
        "SDK_SPECIAL_CHARS_IN_ATTRIBUTES", ("Id", "Text"), ("D", "Text")
    ),
}

# The config is handed to get_target_test_class() by reference and only read when a test
# instantiates the target, which happens after the class-scoped `resource` fixture started the
# emulator; that fixture fills in "auth_url" (the emulator picks a free loopback port).
SAMPLE_CONFIG: dict[str, Any] = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "subdomain": SUBDOMAIN,
    "retry_backoff_ms": 50,
    "retry_max_attempts": 2,
    "streams": {name: de.stream_config() for name, de in SDK_STREAMS.items()},
}


# --------------------------------------------------------------------------------------------
# Helpers for validate()
# --------------------------------------------------------------------------------------------


class EmulatorValidation:
    """Mixin: read what the emulator stored for the SDK test streams."""

    resource: SfmcEmulator

    def rows(self, stream: str) -> list[dict[str, Any]]:
        return self.resource.rows(SDK_STREAMS[stream].key)

    def rows_by(self, stream: str, column: str = "Id") -> dict[Any, dict[str, Any]]:
        rows = self.rows(stream)
        by_key = {row[column]: row for row in rows}
        assert len(by_key) == len(rows), f"duplicate {column!r} values in {rows}"
        return by_key

    def row_requests(self, stream: str) -> list[dict[str, Any]]:
        """Row-loading requests the emulator received for the stream's DE."""
        marker = f"key:{SDK_STREAMS[stream].key}".casefold()
        return [
            entry
            for entry in self.resource.request_log()
            if f"{marker}/" in f"{str(entry['path']).casefold()}/"
        ]


def _assert_uuid5(value: Any) -> None:
    assert isinstance(value, str), value
    assert uuid.UUID(value).version == 5, value


# --------------------------------------------------------------------------------------------
# The 16 standard tests, each with a validate() against the emulator
# --------------------------------------------------------------------------------------------


class SfmcTargetArrayData(EmulatorValidation, TargetArrayData):
    def validate(self) -> None:
        rows = self.rows_by("test_array_data")
        assert sorted(rows) == [1, 2, 3, 4]
        # Arrays are dropped: only the key column is stored.
        for key, row in rows.items():
            assert row == {"Id": key}, row


class SfmcTargetCamelcaseComplexSchema(EmulatorValidation, TargetCamelcaseComplexSchema):
    def validate(self) -> None:
        # Two SCHEMA messages (the second adds columns), no RECORD: the target must accept
        # both without touching SFMC.
        assert self.rows("ForecastingTypeToCategory") == []
        assert self.row_requests("ForecastingTypeToCategory") == []
        assert self.runner.stdout == ""  # no STATE in the input, none emitted


class SfmcTargetCamelcaseTest(EmulatorValidation, TargetCamelcaseTest):
    def validate(self) -> None:
        assert self.rows("TestCamelcase") == [
            {"Id": "1", "Client Name": "Gitter Windows Desktop App"},
            {"Id": "2", "Client Name": "Gitter iOS App"},
        ]


class SfmcTargetCliPrintsTest(TargetCliPrintsTest):
    def test(self) -> None:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            super().test()
        self.output = out.getvalue()

    def validate(self) -> None:
        assert "target-sfmc v" in self.output
        about = json.loads(self.output[self.output.index("\n{") :])
        assert about["name"] == "target-sfmc"
        assert about["description"], "the class docstring is the --about description"
        properties = about["settings"]["properties"]
        assert {"client_id", "client_secret", "subdomain", "auth_url", "streams"} <= set(properties)
        assert properties["client_secret"].get("secret") is True
        assert set(about["settings"]["required"]) == {"client_id", "client_secret"}


class SfmcTargetDuplicateRecords(EmulatorValidation, TargetDuplicateRecords):
    def validate(self) -> None:
        # Upsert on the primary key: one row per id, the last values win.
        assert self.rows("test_duplicate_records") == [
            {"Id": 1, "Metric": 100},
            {"Id": 2, "Metric": 20},
        ]
        assert json.loads(self.runner.stdout) == {"test_duplicate_records": 2}


class SfmcTargetEncodedStringData(EmulatorValidation, TargetEncodedStringData):
    EXPECTED_INFO = {  # noqa: RUF012
        1: "simple string 2837",
        2: "απλή συμβολοσειρά",
        3: "简单的字串",
        4: "chaîne simple",
        5: 'quoted "string"',
        6: 'various " \\ / \n escape sequences',
        7: "m",
        8: "ā",
        9: "ƙ",
        10: "Double quoting: \\u0000 \\u0041 \\u0001",
        11: "Control Characters in string: \x00 A \x01",
    }

    def validate(self) -> None:
        strings = self.rows_by("test_strings")
        assert {key: row["Info"] for key, row in strings.items()} == self.EXPECTED_INFO
        # Nested objects and arrays are dropped: only the key is stored.
        in_objects = self.rows_by("test_strings_in_objects")
        assert list(in_objects.values()) == [{"Id": i} for i in range(1, 12)]
        in_arrays = self.rows_by("test_strings_in_arrays")
        assert list(in_arrays.values()) == [{"Id": i} for i in range(1, 7)]


class SfmcTargetInvalidSchemaTest(EmulatorValidation, TargetInvalidSchemaTest):
    def validate(self) -> None:
        assert self.rows("test_invalid_schema") == []
        assert self.row_requests("test_invalid_schema") == []


class SfmcTargetNoPrimaryKeys(EmulatorValidation, TargetNoPrimaryKeys):
    def validate(self) -> None:
        rows = self.rows_by("test_no_pk")
        assert sorted(rows) == [1, 2, 3]
        assert {key: row["Metric"] for key, row in rows.items()} == {1: 11, 2: 22, 3: 33}
        # The Uuid key is a deterministic UUIDv5 of the record, one per record.
        uuids = [row["Uuid"] for row in rows.values()]
        for value in uuids:
            _assert_uuid5(value)
        assert len(set(uuids)) == 3


class SfmcTargetOptionalAttributes(EmulatorValidation, TargetOptionalAttributes):
    def validate(self) -> None:
        assert self.rows("test_optional_attributes") == [
            {"Id": 1, "Optional": "This is optional"},
            {"Id": 2},
            {"Id": 3, "Optional": "Also optional"},
            {"Id": 4},
        ]


class SfmcTargetPrimaryKeyUpdates(EmulatorValidation, TargetPrimaryKeyUpdates):
    def validate(self) -> None:
        rows = self.rows_by("example_stream")
        assert {key: (row["Name"], row["Email"]) for key, row in rows.items()} == {
            1: ("Alice", "alice@example.com"),
            2: ("Bob", "bob@example.com"),
        }
        for row in rows.values():
            _assert_uuid5(row["Uuid"])


class SfmcTargetRecordBeforeSchemaTest(EmulatorValidation, TargetRecordBeforeSchemaTest):
    def validate(self) -> None:
        # The run stops at the first line; nothing may have reached SFMC.
        assert self.rows("test_record_before_schema") == []
        assert self.row_requests("test_record_before_schema") == []


class SfmcTargetRecordMissingKeyProperty(EmulatorValidation, TargetRecordMissingKeyProperty):
    def validate(self) -> None:
        assert self.rows("test_record_missing_key_property") == []
        assert self.row_requests("test_record_missing_key_property") == []


class SfmcTargetRecordMissingOptionalFields(EmulatorValidation, TargetRecordMissingOptionalFields):
    def validate(self) -> None:
        assert self.rows("record_missing_fields") == [
            {"Id": 1, "Optional": "now you see me"},
            {"Id": 2},
        ]


class SfmcTargetSchemaNoProperties(EmulatorValidation, TargetSchemaNoProperties):
    def validate(self) -> None:
        for stream in ("test_object_schema_with_properties", "test_object_schema_no_properties"):
            rows = self.rows(stream)
            # Each record is only a nested object, which is dropped: the row keeps its Uuid.
            assert len(rows) == 2, rows
            for row in rows:
                assert set(row) == {"Uuid"}, row
                _assert_uuid5(row["Uuid"])
            assert rows[0]["Uuid"] != rows[1]["Uuid"]


class SfmcTargetSchemaUpdates(EmulatorValidation, TargetSchemaUpdates):
    def validate(self) -> None:
        rows = self.rows_by("test_schema_updates")
        assert sorted(rows) == [1, 2, 3, 4, 5, 6]
        for i, row in rows.items():
            assert Decimal(str(row["A 1"])) == 100 + i, row
            assert row["A 2"] == f"string{i}", row
            assert "A 4" not in row, row  # nested object dropped
            assert "A 5" not in row, row  # array dropped
        assert "A 3" not in rows[1]  # column added by the second SCHEMA
        assert [rows[i]["A 3"] for i in range(2, 7)] == [True, False, True, False, True]
        assert [rows[i].get("A 6") for i in range(1, 7)] == [None, None, None, None, 985, 341]
        assert json.loads(self.runner.stdout) == {"test_schema_updates": 6}


class SfmcTargetSpecialCharsInAttributes(EmulatorValidation, TargetSpecialCharsInAttributes):
    def validate(self) -> None:
        # "_id" title-cases to "Id"; the nested "d" object (keys with ":") is dropped.
        assert self.rows("test:SpecialChars!in?attributes") == [{"Id": "a2e98886"}]


# All 16 default standard tests; none is excluded.
sfmc_target_tests = SingerTestSuite(
    kind="target",
    tests=[
        SfmcTargetArrayData,
        SfmcTargetCamelcaseComplexSchema,
        SfmcTargetCamelcaseTest,
        SfmcTargetCliPrintsTest,
        SfmcTargetDuplicateRecords,
        SfmcTargetEncodedStringData,
        SfmcTargetInvalidSchemaTest,
        SfmcTargetNoPrimaryKeys,
        SfmcTargetOptionalAttributes,
        SfmcTargetPrimaryKeyUpdates,
        SfmcTargetRecordBeforeSchemaTest,
        SfmcTargetRecordMissingKeyProperty,
        SfmcTargetRecordMissingOptionalFields,
        SfmcTargetSchemaNoProperties,
        SfmcTargetSchemaUpdates,
        SfmcTargetSpecialCharsInAttributes,
    ],
)

StandardTargetTests = get_target_test_class(
    TargetSfmc,
    config=SAMPLE_CONFIG,
    custom_suites=[sfmc_target_tests],
    include_target_tests=False,
    parse_env_config=False,
)


class TestTargetSfmc(StandardTargetTests):  # type: ignore[misc, valid-type]
    """The SDK's standard target tests against the SFMC emulator."""

    @pytest.fixture(scope="class")
    @classmethod
    def resource(cls):
        """Serve the emulator on loopback for the whole class and point the config at it."""
        emulator = SfmcEmulator(
            data_extensions=[de.definition() for de in SDK_STREAMS.values()],
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
        with emulator:
            SAMPLE_CONFIG["auth_url"] = emulator.url
            try:
                yield emulator
            finally:
                SAMPLE_CONFIG.pop("auth_url", None)
        emulator.close()
