"""The metadata contender (paper Fig. 3): documents round-trip through every serializer and
compressor, in memory and on disk, and fill the result columns they declare."""
import itertools
import json

import pytest

from mrczbench.errors import FormatError
from mrczbench.formats import get_format
from mrczbench.formats.metadata import COMPRESSORS, SERIALIZERS, dumps_json, make_document


@pytest.fixture(scope="module")
def document():
    return make_document(0.05, seed=3)


def test_the_document_is_seeded_and_about_the_size_asked(document):
    assert make_document(0.05, seed=3) == document != make_document(0.05, seed=4)
    assert 0.05 * 2**20 <= len(dumps_json(document)) < 0.06 * 2**20


@pytest.mark.parametrize("serializer, compressor", list(itertools.product(SERIALIZERS, ("none", "lz4", "zstd"))))
def test_round_trip_in_memory_and_on_disk(tmp_path, document, serializer, compressor):
    fmt = get_format("metadata", serializer=serializer, compressor=compressor, level=5, threads=2)
    blob = fmt.encode(document)
    assert fmt.decode(blob) == document
    path = tmp_path / f"doc{fmt.suffix}"
    assert fmt.write(path, document) == path.stat().st_size == len(blob)
    assert fmt.read(path) == document
    if compressor != "none":  # compression happened: smaller than the plain serialisation
        assert len(blob) < len(get_format("metadata", serializer=serializer).encode(document))
    assert fmt.label() == serializer + ("" if compressor == "none" else f"+{compressor}")


def test_row_columns_say_what_was_compressed_and_how():
    assert get_format("metadata", compressor="zstd", level=3, threads=2).row_columns() == {
        "codec": "zstd", "level": 3, "blocksize": None, "filter": None, "threads": 2}
    assert get_format("metadata", level=3).row_columns()["level"] is None  # no compressor, no level


def test_bad_settings_and_data_are_refused():
    with pytest.raises(FormatError, match=f"compressor: expected one of {', '.join(COMPRESSORS)}"):
        get_format("metadata", compressor="zsdt")
    assert "documents" in get_format("metadata").check_data(b"not a document")
    assert json.loads(dumps_json({"é": 1})) == {"é": 1}


def test_without_orjson_only_the_orjson_cases_are_skipped(monkeypatch):
    """Without the orjson extra the whole metadata suite was unavailable (9/9), json and
    msgpack included."""
    import sys

    from mrczbench.bench import measure
    from mrczbench.bench.suites import load_suite
    from mrczbench.formats import format_class

    monkeypatch.setitem(sys.modules, "orjson", None)  # `import orjson` raises ImportError
    assert format_class("metadata").unavailable_reason() is None
    cases = load_suite("metadata", quick=True).cases()
    data = measure.load_data(cases[0], None, {})
    outcome = {}
    for case in cases:
        try:
            measure.make_subject(case, data)
            outcome[case.format["serializer"], case.format["compressor"]] = "runs"
        except measure.Skip as skip:
            outcome[case.format["serializer"], case.format["compressor"]] = skip.reason
    assert len(outcome) == 9
    for (serializer, _), result in outcome.items():
        if serializer == "orjson":
            assert result.startswith("unavailable: python package orjson is not installed")
            assert "pip install mrczbench[orjson]" in result
        else:
            assert result == "runs"
