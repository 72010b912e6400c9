"""depth_diff: the depth.update increment between two order.depth snapshots."""

from __future__ import annotations

import pytest

from marketdata import InvalidArgument, MarketData, depth_diff


def test_no_change_gives_empty_diff():
    book = {"asks": [["10", "1"], ["11", "2"]], "bids": [["9", "1.0"]]}
    assert depth_diff(book, {"asks": [["10", "1.00"], ["11", "2"]], "bids": [["9", "1"]]}) == {}
    assert depth_diff({}, {}) == {}


def test_changed_new_and_removed_levels_per_side_in_book_order():
    old = {"asks": [["10", "1"], ["11", "2"], ["13", "1"]],
           "bids": [["9", "1"], ["8", "4"], ["7", "1"]]}
    new = {"asks": [["10", "1"], ["12", "5"], ["13", "3"]],
           "bids": [["9.5", "2"], ["9", "1"], ["7", "1"]]}
    assert depth_diff(old, new) == {
        "asks": [["11", "0"], ["12", "5"], ["13", "3"]],
        "bids": [["9.5", "2"], ["8", "0"]],
    }


def test_one_side_only_and_emptied_side():
    old = {"asks": [["10", "1"]], "bids": [["9", "1"], ["8", "1"]]}
    new = {"asks": [["10", "1"]], "bids": []}
    assert depth_diff(old, new) == {"bids": [["9", "0"], ["8", "0"]]}
    assert depth_diff({"asks": [], "bids": []}, old) == {
        "asks": [["10", "1"]], "bids": [["9", "1"], ["8", "1"]]}


def test_levels_pushed_out_of_a_full_window_are_not_removals():
    old = {"asks": [["10", "1"], ["11", "1"]], "bids": []}
    new = {"asks": [["9", "1"], ["10", "1"]], "bids": []}  # limit 2: 11 just left the window
    assert depth_diff(old, new, limit=2) == {"asks": [["9", "1"]]}
    assert depth_diff(old, new) == {"asks": [["9", "1"], ["11", "0"]]}


def test_method_on_market_data_and_bad_input():
    md = MarketData([])
    assert md.depth_diff({"asks": [["1", "1"]]}, {"asks": []}) == {"asks": [["1", "0"]]}
    with pytest.raises(InvalidArgument, match="bad depth level"):
        depth_diff({"asks": [["x", "1"]]}, {})
    with pytest.raises(InvalidArgument, match="bad depth level"):
        depth_diff({"asks": [["1"]]}, {})
    with pytest.raises(InvalidArgument, match="list"):
        depth_diff({"bids": "nope"}, {})
