"""The principal loader registry: a key goes to the loader of its kind, and a kind cannot steal another's keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from app.auth.principals import PrincipalLoaders


@dataclass
class Someone:
    key: str
    tenant_id: uuid.UUID | None = None
    role: str = "viewer"
    is_authenticated: bool = True

    def get_id(self) -> str:
        return self.key


def test_a_key_of_a_registered_kind_goes_to_that_kind_and_any_other_to_the_users_loader():
    loaders = PrincipalLoaders(lambda key: Someone(f"user {key}"))
    loaders.register("guest", lambda key: Someone(f"guest {key}"))
    user_key = f"{uuid.uuid4()}:{uuid.uuid4()}"
    assert loaders.load(user_key).get_id() == f"user {user_key}"
    assert loaders.load("guest:abc").get_id() == "guest guest:abc"  # the loader gets the whole key
    assert loaders.load("support:x:y").get_id() == "user support:x:y"  # no such kind here: the users' loader says no


def test_a_loader_may_answer_nobody():
    loaders = PrincipalLoaders(lambda key: None)
    loaders.register("guest", lambda key: None)
    assert loaders.load("guest:gone") is None and loaders.load("x") is None


@pytest.mark.parametrize("kind", ["", "a", "Guest", "guest:x", "deadbeef", "abc", "7up", "g" * 40])
def test_a_kind_that_could_clash_with_a_user_key_or_is_malformed_is_refused(kind):
    with pytest.raises(ValueError):
        PrincipalLoaders(lambda key: None).register(kind, lambda key: None)


def test_a_kind_has_one_loader():
    loaders = PrincipalLoaders(lambda key: None)
    loaders.register("support", lambda key: None)
    with pytest.raises(ValueError, match="already"):
        loaders.register("support", lambda key: None)
