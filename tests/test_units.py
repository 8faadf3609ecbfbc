import pytest

from lattts.errors import UserError
from lattts.units import format_duration, parse_duration_s, parse_int_list


@pytest.mark.parametrize("text,seconds", [
    ("500ms", 0.5), ("10s", 10.0), ("1m", 60.0), ("1.5min", 90.0), ("60", 60.0), ("2h", 7200.0), (" 5 s ", 5.0),
])
def test_parse_duration(text, seconds):
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "10 parsecs", "-5s", "0s", "1e999s"])
def test_bad_durations_are_user_errors(text):
    with pytest.raises(UserError):
        parse_duration_s(text)


def test_format_duration_picks_a_readable_unit():
    assert format_duration(0.25) == "250 ms"
    assert format_duration(12.34) == "12.3 s"
    assert format_duration(300) == "5 min"


def test_int_lists():
    assert parse_int_list("4,1, 2,4", "--branches") == [1, 2, 4]
    with pytest.raises(UserError, match=">= 1"):
        parse_int_list("0,1", "--branches")
    from lattts.limits import count

    assert parse_int_list("1,128", "--branches", count(1, 128)) == [1, 128]
    with pytest.raises(UserError, match=r"129 is out of range: each value must be 1\.\.128"):
        parse_int_list("1,129", "--branches", count(1, 128))
    with pytest.raises(UserError, match="not an integer"):
        parse_int_list("1,x", "--branches")


def test_values_that_round_up_move_to_the_next_unit():
    from lattts.units import format_bytes, format_rate

    assert format_duration(0.9996) == "1 s"  # not '1e+03 ms'
    assert format_duration(119.97) == "2 min"
    assert format_bytes(999.7e6) == "1 GB"
    assert format_rate(999.8e12, "FLOP") == "1 PFLOP/s"
