"""The corpus itself: every schema names its source, and generated records conform to it."""

from __future__ import annotations

import decimal
import json

import jsonschema
import pytest
from corpus_records import SCHEMAS, CorpusStream, corpus

STREAMS = corpus()


def test_every_schema_file_is_in_the_index_with_its_source():
    indexed = {stream.entry["file"] for stream in STREAMS}
    on_disk = {path.name for path in SCHEMAS.glob("*.json")} - {"index.json"}
    assert indexed == on_disk
    for stream in STREAMS:
        source = stream.entry["source"]
        assert source["repository"].count("/") == 1, stream.name
        assert source["path"], stream.name
        assert len(source["commit"]) == 40, stream.name
        assert stream.entry["notes"], stream.name


@pytest.mark.parametrize(
    "stream", [s for s in STREAMS if s.name != "segment_export"], ids=lambda stream: stream.name
)
def test_generated_records_conform_to_their_schema(stream: CorpusStream):
    # Checked by jsonschema itself, with the schema's numbers as Decimals (as the target reads
    # them) and enough precision for steps like 1e-38.
    schema = json.loads(json.dumps(stream.schema), parse_float=decimal.Decimal)
    validator_class = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft4Validator
    )
    validator = validator_class(schema)
    records = stream.records(40)
    with decimal.localcontext() as context:
        context.prec = 400
        problems = [
            error.json_path for record in records for error in validator.iter_errors(record)
        ]
    assert problems == []
    assert records == stream.records(40), "records must be the same on every run"


def test_records_carry_the_edge_values_taps_send():
    values = [
        value for stream in STREAMS for record in stream.records(30) for value in record.values()
    ]
    numbers = [v for v in values if isinstance(v, decimal.Decimal)]
    integers = [v for v in values if type(v) is int]
    texts = [v for v in values if isinstance(v, str)]
    assert decimal.Decimal("1E-7") in numbers
    assert decimal.Decimal("1E+21") in numbers
    assert any(len(v.as_tuple().digits) >= 20 for v in numbers)
    assert any(abs(v) > 2**53 for v in integers)
    assert "2020-05-30T13:30:00.123456+05:30" in texts  # non-UTC offset, microseconds
    assert "2019-07-04T12:00:00" in texts  # naive
    assert "2020-02-29" in texts  # format: date
    assert "23:59:59.999999" in texts  # format: time
    assert None in values
    assert any(isinstance(v, dict) and v for v in values)
    assert any(isinstance(v, list) and v for v in values)
