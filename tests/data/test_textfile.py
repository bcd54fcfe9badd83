"""Tests for reading delimited text: rows as a spreadsheet shows them, quotes, field sizes."""

import numpy as np
import pytest

import tfrec  # noqa: F401
from tfrec import errors
from tfrec.data import textfile


def test_line_of_counts_quoted_breaks_and_blank_lines(write):
    path = write("t.csv", ["a,b", '1,"x', 'y"', "", "2,z", "3,w"])
    fmt = textfile.TextFormat()
    frame = textfile.read_table(path, fmt)
    assert frame["b"].tolist() == ["x\ny", "z", "w"]
    assert [textfile.line_of(path, r, fmt) for r in range(3)] == [2, 5, 6]
    assert textfile.lines_of(path, [2, 0, 1], fmt).tolist() == [6, 2, 5]


def test_one_record_per_line_maps_arithmetically(write):
    path = write("t.csv", ["a,b", "1,x", "2,y", "3,z"])
    fmt = textfile.TextFormat()
    textfile.read_table(path, fmt)
    assert textfile.lines_of(path, [0, 2], fmt).tolist() == [2, 4]
    # Without a header the first record is row 1.
    path = write("u.data", ["1\t2", "3\t4"])
    tab = textfile.TextFormat(sep="\t", header=False, quoting=False)
    textfile.read_table(path, tab, names=["x", "y"])
    assert textfile.lines_of(path, [1], tab).tolist() == [2]


def test_rows_of_non_text_files_count_the_header():
    assert textfile.lines_of("t.parquet", np.array([0, 5]), None).tolist() == [2, 7]


def test_ragged_row_names_line(write):
    with pytest.raises(errors.DataError, match="row 3: expected 2 fields, received 3"):
        textfile.read_table(write("t.csv", ["a,b", "1,2", "1,2,3"]))


def test_multi_character_separator(write):
    frame = textfile.read_table(
        write("t.dat", ["1::a|b", "2::c"]), textfile.TextFormat(sep="::", header=False),
        names=["id", "genres"],
    )  # fmt: skip
    assert frame.to_dict("list") == {"id": ["1", "2"], "genres": ["a|b", "c"]}


def test_oversized_field_names_row_and_field(write):
    # Row 2 spans lines 2-3, so the 2 MB field on record 2 sits on line 5, not line 4.
    big = "A" * 2_000_000
    path = write("t.csv", ["id,text", '1,"two\nlines"', "2,ok", f"3,{big}", "4,ok"])
    with pytest.raises(errors.DataError) as info:
        textfile.read_table(path)
    err = info.value
    assert (err.path, err.row, err.field) == (str(path), 5, "text")
    assert "expected at most 65,536 characters" in str(err)
    assert "received 2,000,000 characters starting 'AAAA" in str(err)


def test_field_size_limit_is_configurable(write):
    path = write("t.csv", ["id,text", "1," + "A" * 100])
    with pytest.raises(errors.DataError, match="row 2, field `text`: expected at most 99 "):
        textfile.read_table(path, max_field_size=99)
    assert textfile.read_table(path, max_field_size=100)["text"].str.len().tolist() == [100]


def test_rescan_past_a_huge_field_names_the_later_row(write):
    # The csv module refuses fields over 128 Ki characters by default; the rescan that finds
    # the row of a later error must not stop there with a traceback.
    big = "A" * 200_000
    path = write("t.csv", ["id,text", f'1,"{big}\nmore"', "2,x", "3,y,z"])
    with pytest.raises(errors.DataError, match="row 5: expected 2 fields, received 3"):
        textfile.read_table(path, max_field_size=300_000)


def test_unclosed_quote_in_last_row_names_where_it_opens(write):
    # The fast parser would read `"UK\n` as a value; the odd quote count sends it to the check.
    path = write("t.csv", ["id,name,country", "1,a,UK", '2,b,"UK', ""])
    with pytest.raises(errors.DataError) as info:
        textfile.read_table(path)
    err = info.value
    assert (err.row, err.field) == (3, "country")
    assert 'expected a closing `"` for the quote that opens in this row' in str(err)
    assert "received the end of the file (line 4)" in str(err)


def test_unclosed_quote_mid_file_names_where_it_opens(write):
    path = write("t.csv", ["id,name,n", "1,a,1", '2,"b,2', "3,c,3", "4,d,4"])
    with pytest.raises(errors.DataError) as info:
        textfile.read_table(path)
    assert (info.value.row, info.value.field) == (3, "name")
    assert "received the end of the file (line 5)" in str(info.value)


def test_literal_quotes_in_unquoted_fields_are_accepted(write):
    # An odd number of quotes is only a hint: 12" inside an unquoted field is plain text.
    frame = textfile.read_table(write("t.csv", ["id,name", '1,12" RECORD', "2,x"]))
    assert frame["name"].tolist() == ['12" RECORD', "x"]


def test_oversized_field_in_a_file_that_does_not_parse(write):
    # The ragged row 4 sends the file to the rescan, which meets the big field first.
    path = write("t.csv", ["id,text", "1,ok", "2," + "B" * 500, "3,x,y"])
    with pytest.raises(errors.DataError) as info:
        textfile.read_table(path, max_field_size=400)
    assert (info.value.row, info.value.field) == (3, "text")
    assert "received 500 characters starting 'BBBB" in str(info.value)


def test_broken_gzip_is_a_data_error(tmp_path):
    path = tmp_path / "t.csv.gz"
    path.write_bytes(b"a,b\n1,2\n")  # named .gz, but plain text
    with pytest.raises(errors.DataError, match=r"t\.csv\.gz`: expected a readable file"):
        textfile.read_table(path)
