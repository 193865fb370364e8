"""Review times read as people say them, in the workspace's zone."""

from __future__ import annotations

import datetime as dt

from app.review.times import when, zone

NOW = dt.datetime(2026, 11, 3, 15, 0, tzinfo=dt.UTC)


def test_today_and_yesterday_carry_the_time_older_ones_the_day_and_month():
    assert when(dt.datetime(2026, 11, 3, 14, 32, tzinfo=dt.UTC), now=NOW) == "Today 14:32"
    assert when(dt.datetime(2026, 11, 2, 9, 5, tzinfo=dt.UTC), now=NOW) == "Yesterday 09:05"
    assert when(dt.datetime(2026, 10, 28, 9, 5, tzinfo=dt.UTC), now=NOW) == "28 Oct"
    assert when(dt.datetime(2025, 11, 3, 9, 5, tzinfo=dt.UTC), now=NOW) == "3 Nov 2025"
    assert when(None) == ""


def test_the_day_is_the_workspaces_not_utcs():
    copenhagen = zone("Europe/Copenhagen")
    late = dt.datetime(2026, 11, 2, 23, 30, tzinfo=dt.UTC)  # already 3 Nov in Copenhagen
    assert when(late, copenhagen, now=NOW) == "Today 00:30"
    assert zone("Not/AZone") is dt.UTC and zone("") is dt.UTC
