"""Job arguments are ids only."""

from __future__ import annotations

import uuid

import pytest

from app.jobs.queue import check_job_args


def test_ids_are_accepted_as_job_arguments():
    check_job_args((str(uuid.uuid4()), 42, uuid.uuid4(), "audit_retention"))


@pytest.mark.parametrize("arg", [{"key": "v"}, ["a"], 1.5, True, b"bytes", "a secret with spaces", "x" * 65,
                                 "Basic Zm9vOmJhcg=="])
def test_anything_but_an_id_is_refused_as_a_job_argument(arg):
    with pytest.raises((TypeError, ValueError)):
        check_job_args((arg,))
