"""Tests for the UCI Online Retail loader: every caveat on a hand-written file, then the real one."""

import time
from pathlib import Path

import pandas as pd
import pytest

import tfrec  # noqa: F401  (sets up the environment before anything else)
from tfrec import errors
from tfrec.data import cleaning, online_retail

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
# Line numbers in comments: the header is line 1.
ROWS = [
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom",  # 2 kept, 2 of 6 cancelled by 13
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850,United Kingdom",  # 3 cancelled in full by 12
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850,United Kingdom",  # 4 duplicate of 3
    "536366,85123a,WHITE HANGING HEART T-LIGHT HOLDER ,2,2010-12-01 09:00:00,2.55,13047,United Kingdom",  # 5 kept
    "536367,85123A,CREAM HANGING HEART,1,2010-12-01 10:00:00,2.60,13047,France",  # 6 kept
    "536368,POST,POSTAGE,3,2010-12-01 11:00:00,18.00,12583,France",  # 7 non-product
    "536369,22633,HAND WARMER UNION JACK,12,2010-12-01 12:00:00,2.10,,United Kingdom",  # 8 guest
    "536370,22634,,5,2010-12-01 12:30:00,0.00,,United Kingdom",  # 9 price 0
    "536371,22635,damaged,-5,2010-12-01 13:00:00,0.00,,United Kingdom",  # 10 stock adjustment
    "A563185,B,Adjust bad debt,1,2011-08-12 14:50:00,11062.06,,United Kingdom",  # 11 A
    "C536379,71053,WHITE METAL LANTERN,-6,2010-12-02 09:00:00,3.39,17850,United Kingdom",  # 12 C
    "C536380,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-2,2010-12-02 09:30:00,2.55,17850,United Kingdom",  # 13 C
    "C536381,22222,NEVER BOUGHT,-1,2010-12-02 10:00:00,1.00,17850,United Kingdom",  # 14 C, unmatched
    "536390,22633,HAND WARMER UNION JACK,4,2010-12-03 08:00:00,2.10,13047,United Kingdom",  # 15 kept
    "536391,M,Manual,1,2010-12-03 09:00:00,5.00,13047,United Kingdom",  # 16 non-product
    "536392,gift_0001_20,Gift Voucher,1,2010-12-03 10:00:00,16.67,13047,United Kingdom",  # 17 non-product
    '536393,84029E,"RED WOOLLY HOTTIE, LARGE",6,2010-12-03 11:00:00,3.39,12583,France',  # 18 kept
    "536394,DCGSSGIRL,GIRLS PARTY BAG,1,2010-12-03 12:00:00,3.29,12583,France",  # 19 non-product
]
EXPECTED_DROPS = {
    "missing Quantity, UnitPrice or InvoiceDate": 0,
    online_retail.TIME_RANGE: 0,
    "adjust bad debt (`A` invoice)": 1,
    "cancellation (`C` invoice)": 3,
    "stock adjustment (Quantity <= 0, not a `C` invoice)": 1,
    "UnitPrice <= 0": 1,
    "missing CustomerID": 1,
    online_retail.NON_PRODUCT: 4,
    online_retail.DUPLICATE: 1,
    online_retail.CANCELLED: 1,
}
UCI = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "online-retail"


def check_fixture(ds):
    report = ds.report
    assert report.rows_read == 18
    assert report.dropped == EXPECTED_DROPS
    assert report.rows_kept == 5
    assert report.examples[online_retail.DUPLICATE] == ["row 4: copy of row 3"]
    assert report.examples["UnitPrice <= 0"] == ["row 9: `UnitPrice` '0.00'"]
    assert report.examples[online_retail.NON_PRODUCT] == [
        "row 7: `StockCode` 'POST'",
        "row 16: `StockCode` 'M'",
        "row 17: `StockCode` 'gift_0001_20'",
    ]  # three examples of four
    inter = ds.interactions
    # Lines 2, 5, 6, 15, 18 in time order; line 2 keeps 6 - 2 = 4 units after the partial cancel.
    assert inter["item_id"].tolist() == ["85123A", "85123A", "85123A", "22633", "84029E"]
    assert inter["user_id"].tolist() == ["17850", "13047", "13047", "13047", "12583"]
    assert inter["quantity"].tolist() == [4.0, 2.0, 1.0, 4.0, 6.0]
    assert inter["timestamp"].iloc[0] == 1291191960  # 2010-12-01 08:26:00 read as UTC
    assert set(inter["event_type"]) == {"purchase"} and set(inter["value"]) == {1.0}
    items = ds.items.set_index("item_id")
    assert items.loc["85123A", "title"] == "WHITE HANGING HEART T-LIGHT HOLDER"  # 2 votes vs 1
    assert items.loc["84029E", "title"] == "RED WOOLLY HOTTIE, LARGE"
    assert items.loc["85123A", "price"] == pytest.approx(2.55)  # median of 2.55, 2.55, 2.60
    assert sorted(items.index) == ["22633", "84029E", "85123A"]
    countries = dict(zip(ds.users["user_id"], ds.users["country"], strict=True))
    assert countries == {"12583": "France", "13047": "United Kingdom", "17850": "United Kingdom"}
    assert "1 purchases cancelled in full" in report.treatments["cancellations"]
    assert "1 partly cancelled" in report.treatments["cancellations"]
    assert "1 cancellations found no earlier purchase" in report.treatments["cancellations"]


@pytest.mark.parametrize("name", ["retail.csv", "retail.csv.gz"])
def test_fixture_covers_every_caveat(write, name):
    check_fixture(online_retail.load(write(name, [HEADER, *ROWS])))


def test_xlsx_matches_csv(write, tmp_path):
    frame = pd.read_csv(write("retail.csv", [HEADER, *ROWS]), dtype=str, keep_default_na=False)
    frame["CustomerID"] = pd.to_numeric(frame["CustomerID"])  # as in the UCI xlsx: 17850.0
    frame.to_excel(tmp_path / "retail.xlsx", index=False)
    check_fixture(online_retail.load(tmp_path / "retail.xlsx"))


def test_us_date_format(write):
    rows = [HEADER, "536365,85123A,HEART,6,12/1/2010 8:26,2.55,17850,United Kingdom"]
    ds = online_retail.load(write("retail.csv", rows))
    assert ds.interactions["timestamp"].tolist() == [1291191960]


def test_missing_column_lists_expected_and_received(write):
    path = write("retail.csv", [HEADER.replace("InvoiceNo", "Invoice"), ROWS[0]])
    with pytest.raises(errors.DataError, match=r"missing \['InvoiceNo'\]") as info:
        online_retail.load(path)
    assert info.value.field == "InvoiceNo" and "'Invoice'" in str(info.value)


def test_bad_date_names_the_real_line(write):
    # The quoted line break makes record 2 start on line 4.
    rows = [
        HEADER,
        '1,22633,"TWO\nLINES",1,2010-12-01 08:26:00,1.0,1,UK',
        "2,22633,X,1,foo,1.0,1,UK",
    ]
    with pytest.raises(errors.DataError, match="expected a date like .*received 'foo'") as info:
        online_retail.load(write("retail.csv", rows))
    assert (info.value.row, info.value.field) == (4, "InvoiceDate")


def test_bad_number_names_row_and_field(write):
    rows = [HEADER, ROWS[0], ROWS[1].replace(",6,", ",six,")]
    with pytest.raises(errors.DataError, match=r"row 3, field `Quantity`.*received 'six'"):
        online_retail.load(write("retail.csv", rows))


def test_non_utf8_byte_names_file_and_line(write):
    text = "\n".join([HEADER, ROWS[0], ROWS[1].replace("LANTERN", "LANT\xc9RN")]) + "\n"
    path = write("retail.csv", text, encoding="latin-1")
    with pytest.raises(errors.DataError, match=r"retail\.csv`, row 3: expected utf-8 .*0xc9"):
        online_retail.load(path)


def test_missing_file():
    with pytest.raises(errors.DataError, match="nope.csv"):
        online_retail.load("nope.csv")


@pytest.mark.skipif(not (UCI / "online_retail.csv.gz").is_file(), reason=f"{UCI} is absent")
def test_real_uci_file():
    start = time.perf_counter()
    ds = online_retail.load(UCI / "online_retail.csv.gz")
    seconds = time.perf_counter() - start
    report = ds.report
    assert report.rows_read == 541_909  # README: verified row count
    usual = sum(report.dropped[r] for r in online_retail.USUAL)
    assert report.rows_read - usual == 397_884  # README: rows after the usual cleaning
    assert report.dropped["cancellation (`C` invoice)"] == 9_288  # README
    assert report.dropped["stock adjustment (Quantity <= 0, not a `C` invoice)"] == 1_336  # README
    assert report.dropped["adjust bad debt (`A` invoice)"] == 3  # README
    # What this loader drops beyond the usual cleaning.
    assert report.dropped[online_retail.NON_PRODUCT] == 1_547
    assert report.dropped[online_retail.DUPLICATE] == 5_187
    assert report.dropped[online_retail.CANCELLED] == 2_781
    assert report.rows_kept == len(ds.interactions) == 388_369
    assert ds.interactions["user_id"].nunique() == len(ds.users) == 4_324  # README usual: 4,338
    assert len(ds.items) == 3_645  # README usual: 3,665 (6 of them are non-product codes)
    assert ds.interactions["timestamp"].iloc[[0, -1]].tolist() == [1291191960, 1323435000]
    print(f"UCI Online Retail loaded and cleaned in {seconds:.1f} s")


def test_bad_date_in_a_us_dated_file_blames_its_own_row(write):
    # Rows 2-3 are US dates that the first format rejects; only row 4 fits no format.
    rows = [HEADER, "1,22633,X,1,12/1/2010 8:26,1.0,1,UK", "2,22633,X,1,12/2/2010 8:26,1.0,1,UK",
            "3,22633,X,1,foo,1.0,1,UK"]  # fmt: skip
    with pytest.raises(errors.DataError, match="received 'foo'") as info:
        online_retail.load(write("retail.csv", rows))
    assert (info.value.row, info.value.field) == (4, "InvoiceDate")


def test_implausible_dates_are_dropped_and_named(write):
    rows = [HEADER, ROWS[0], ROWS[0].replace("2010-12-01", "1970-01-01").replace("536365", "2"),
            ROWS[3].replace("2010-12-01", "2300-01-01")]  # fmt: skip
    ds = online_retail.load(write("retail.csv", rows))
    assert ds.report.dropped[online_retail.TIME_RANGE] == 2
    assert ds.report.examples[online_retail.TIME_RANGE] == [
        "row 3: `InvoiceDate` '1970-01-01 08:26:00'",
        "row 4: `InvoiceDate` '2300-01-01 09:00:00'",
    ]
    assert ds.interactions["timestamp"].tolist() == [1291191960]


def test_strict_refuses_an_implausible_date(write):
    rows = [HEADER, ROWS[0], ROWS[3].replace("2010-12-01", "2300-01-01")]
    rules = cleaning.Rules(strict=True)
    with pytest.raises(errors.DataError, match=r"retail\.csv`, row 3, field `InvoiceDate`: "
                       r"expected a time from 1990-01-01 00:00:00 to .* received "
                       r"'2300-01-01 09:00:00'"):  # fmt: skip
        online_retail.load(write("retail.csv", rows), rules)


def test_strict_refuses_the_first_suspect_row_in_file_order(write):
    strict = cleaning.Rules(strict=True)
    with pytest.raises(errors.DataError) as info:
        online_retail.load(write("retail.csv", [HEADER, *ROWS]), strict)
    assert (info.value.row, info.value.field) == (4, None)  # the duplicate, before the price
    without_duplicate = [HEADER, *ROWS[:2], *ROWS[3:]]
    with pytest.raises(errors.DataError) as info:
        online_retail.load(write("retail.csv", without_duplicate), strict)
    assert (info.value.row, info.value.field) == (8, "UnitPrice")  # was line 9: price 0.00
    assert "expected a price > 0, received '0.00'" in str(info.value)


def test_strict_refuses_a_duplicate_row(write):
    path = write("retail.csv", [HEADER, *ROWS[:3]])
    with pytest.raises(errors.DataError, match="row 4: expected each row once, received a copy "
                       "of row 3 "):  # fmt: skip
        online_retail.load(path, cleaning.Rules(strict=True))


def test_huge_description_is_a_data_error(write):
    rows = [HEADER, ROWS[0], ROWS[1].replace("WHITE METAL LANTERN", "X" * 2_000_000)]
    with pytest.raises(errors.DataError) as info:
        online_retail.load(write("retail.csv.gz", rows))
    assert (info.value.row, info.value.field) == (3, "Description")


def test_unclosed_quote_is_a_data_error(write):
    rows = [HEADER, ROWS[0], ROWS[1].replace("WHITE METAL", '"WHITE METAL'), ROWS[3]]
    with pytest.raises(errors.DataError, match='expected a closing `"`') as info:
        online_retail.load(write("retail.csv", rows))
    assert (info.value.row, info.value.field) == (3, "Description")
