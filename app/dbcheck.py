"""The start-up check of the database role web and worker connect as: it must not be able to bypass row-level security.

Row-level security binds the app role only while that role is not a superuser, has no BYPASSRLS and owns no table (an
owner passes its own policies unless FORCE is set, and can drop them). A role that can ``SET ROLE`` to such a role has
the same power, so membership counts as well as the role itself.
"""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from app.config import ConfigError

_CURRENT = text("select current_user")
# Roles the current user is, or can become, that are superuser or BYPASSRLS.
_PRIVILEGED = text("""
    select r.rolname, r.rolsuper, r.rolbypassrls from pg_roles r
    where (r.rolsuper or r.rolbypassrls) and pg_has_role(current_user, r.oid, 'MEMBER')
    order by r.rolname""")
# Tables (outside the system schemas) whose owner the current user is, or can become.
_OWNED = text("""
    select pg_get_userbyid(c.relowner) as owner, c.relname from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema')
      and n.nspname not like 'pg_toast%' and pg_has_role(current_user, c.relowner, 'MEMBER')
    order by c.relname""")


def role_problems(engine: Engine) -> list[str]:
    """What is wrong with the role ``engine`` connects as; empty when it is a plain app role."""
    with engine.connect() as conn:
        me = conn.execute(_CURRENT).scalar_one()
        privileged = conn.execute(_PRIVILEGED).all()
        owned = conn.execute(_OWNED).all()
    problems = []
    for row in privileged:
        kinds = " and ".join(k for k, on in (("a superuser", row.rolsuper), ("BYPASSRLS", row.rolbypassrls)) if on)
        who = f"role {me} is" if row.rolname == me else f"role {me} can become {row.rolname}, which is"
        problems.append(f"{who} {kinds}")
    owners = sorted({row.owner for row in owned})
    for owner in owners:
        tables = [row.relname for row in owned if row.owner == owner]
        shown = ", ".join(tables[:3]) + (f" and {len(tables) - 3} more" if len(tables) > 3 else "")
        who = f"role {me}" if owner == me else f"role {me} can become {owner}, which"
        problems.append(f"{who} owns tables ({shown})")
    return problems


def check_app_role(engine: Engine) -> None:
    """Refuse to run as a role that row-level security does not bind; the message names each problem."""
    try:
        problems = role_problems(engine)
    except OperationalError as exc:
        # The driver's first line says why (refused, unknown host, bad password) and never holds the password.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "no answer"
        raise ConfigError(f"DATABASE_URL: cannot connect to check the app role ({reason})") from None
    if problems:
        raise ConfigError("DATABASE_URL: " + "; ".join(problems) + ". Connect web and worker as the app role "
                          "(not superuser, not BYPASSRLS, owns nothing); `make migrate` creates it.")
