"""Every audit action the code writes has a sentence for people; unknown actions still read; sentences name people
and invoices the way the page's lookups give them."""

from __future__ import annotations

import ast
import pathlib
import re
from dataclasses import dataclass

from app.audit.sentences import SENTENCES, Context, sentence

APP = pathlib.Path(__file__).resolve().parents[2] / "app"
ACTION = re.compile(r"[a-z_]+\.[a-z_]+")
WRITERS = ("record", "audit_outside_request")


def _is_writer(call: ast.Call) -> bool:
    name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
    return name in WRITERS or "audit" in name.lower()


def _constants(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and ACTION.fullmatch(n.value)}


def _assigned(func: ast.AST, name: str) -> set[str]:
    """Every action-like constant assigned to ``name`` in ``func`` (plain or tuple assignments, dict values)."""
    found: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                names = [target] if isinstance(target, ast.Name) else getattr(target, "elts", [])
                for i, t in enumerate(names):
                    if isinstance(t, ast.Name) and t.id == name:
                        value = node.value.elts[i] if isinstance(node.value, ast.Tuple) and \
                            isinstance(target, ast.Tuple) else node.value
                        keys = {id(k) for d in ast.walk(value) if isinstance(d, ast.Dict) for k in d.keys}
                        found |= {n.value for n in ast.walk(value) if isinstance(n, ast.Constant)
                                  and isinstance(n.value, str) and id(n) not in keys}
    return found


def written_actions() -> dict[str, str]:
    """Action names passed to the audit writers across app/, resolved through variables, parameters (call sites
    in the same module) and f-strings over a variable's values."""
    actions: dict[str, str] = {}
    for path in APP.rglob("*.py"):
        if path.name == "sentences.py":
            continue
        tree = ast.parse(path.read_text())
        funcs = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
        parents = {child: f for f in funcs.values() for child in ast.walk(f)}
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call) and _is_writer(n)):
            where = f"{path.relative_to(APP.parent)}:{call.lineno}"
            func = parents.get(call)
            for arg in [*call.args, *(k.value for k in call.keywords if k.arg == "action")]:
                for c in _constants(arg):
                    actions.setdefault(c, where)
                if isinstance(arg, ast.JoinedStr) and func is not None:
                    prefix = "".join(v.value for v in arg.values if isinstance(v, ast.Constant))
                    for v in arg.values:
                        if isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name):
                            for value in _assigned(func, v.value.id):
                                actions.setdefault(prefix + value, where)
                if isinstance(arg, ast.Name) and func is not None:
                    for value in _assigned(func, arg.id):
                        if ACTION.fullmatch(value):
                            actions.setdefault(value, where)
                    params = [a.arg for a in func.args.args]
                    if arg.id in params:  # a parameter: what the module's callers pass in its place
                        index = params.index(arg.id)
                        for caller in ast.walk(tree):
                            if isinstance(caller, ast.Call) and getattr(caller.func, "id", "") == func.name:
                                passed = caller.args[index] if index < len(caller.args) else next(
                                    (k.value for k in caller.keywords if k.arg == arg.id), None)
                                for c in _constants(passed) if passed is not None else ():
                                    actions.setdefault(c, where)
    return actions


def test_the_collector_finds_the_actions_written_through_variables_parameters_and_fstrings():
    found = written_actions()
    for action in ("user.role_changed", "user.deactivated", "review.approved", "review.writeback_conflict",
                   "connectwise.member_reactivated", "support.granted_without_approval", "review.flag_unmarked",
                   "auth.forbidden", "branding.saved"):
        assert action in found, action


def test_every_action_the_code_writes_has_a_sentence():
    missing = {a: where for a, where in written_actions().items() if a not in SENTENCES}
    assert not missing, f"add these to app/audit/sentences.py: {missing}"


@dataclass
class Row:
    action: str
    actor_type: str = "user"
    actor_id: str | None = "u1"
    actor_label: str = "olive@acme.example"
    target_type: str = ""
    target_id: str = ""
    before: dict | None = None
    after: dict | None = None


PEOPLE = Context(people={"u1": "Olive Owner", "u2": "Bob Biller"}, invoice_numbers={"77": "INV-0077"})


def test_a_brand_colour_change_reads_as_a_sentence():
    line = sentence(Row("branding.saved", before={"brand_colour": "#1D4ED8"}, after={"brand_colour": "#0F766E"}),
                    PEOPLE)
    assert line.sentence == "Olive Owner changed the brand colour from #1D4ED8 to #0F766E"


def test_an_approval_names_the_invoice_by_number_from_the_row_or_the_lookup_else_by_id():
    row = Row("review.approved", target_type="invoice", target_id="42", after={"invoice_number": "10234"})
    assert sentence(row, PEOPLE).sentence == "Olive Owner approved invoice 10234"
    assert sentence(Row("review.approved", target_type="invoice", target_id="77"), PEOPLE).sentence == \
        "Olive Owner approved invoice INV-0077"
    assert sentence(Row("invoices.public_link_created", target_type="public_link", target_id="x",
                        after={"invoice_id": 55}), PEOPLE).sentence == \
        "Olive Owner created a public link for invoice #55"


def test_member_sync_says_how_many_users_it_added():
    row = Row("connectwise.members_synced", actor_type="system", actor_id=None, actor_label="connectwise member sync",
              after={"members": 12, "created": 3, "updated": 0, "deactivated": 0, "proposed": 0})
    assert sentence(row, PEOPLE).sentence == "Member sync added 3 users"


def test_a_role_change_names_both_people_and_both_roles():
    row = Row("user.role_changed", target_type="user", target_id="u2", before={"role": "viewer"},
              after={"role": "billing_manager"})
    assert sentence(row, PEOPLE).sentence == "Olive Owner changed Bob Biller's role from viewer to billing manager"


def test_an_unknown_action_still_reads_with_person_action_words_and_target():
    row = Row("review.something_new", target_type="invoice", target_id="77", after={"colour": "red"})
    line = sentence(row, PEOPLE)
    assert line.sentence == "Olive Owner did review something new on invoice INV-0077"
    assert line.details == ("colour: red",)


def test_a_person_no_longer_in_the_lookup_is_named_by_the_label_the_row_kept():
    assert sentence(Row("auth.signed_out", actor_id="gone"), PEOPLE).sentence == "olive@acme.example signed out"


def test_a_connectwise_key_replacement_names_the_keys_and_never_reads_as_a_changed_value():
    keys_only = Row("connectwise.connection_saved", before={"changed_keys": ""}, after={"changed_keys": "private"})
    assert sentence(keys_only, PEOPLE).sentence == "Olive Owner replaced the ConnectWise private key"
    nothing = Row("connectwise.connection_saved", before={}, after={})
    assert sentence(nothing, PEOPLE).sentence == "Olive Owner saved the ConnectWise connection without changes"
    both = Row("connectwise.connection_saved", before={"company_id": "old", "changed_keys": ""},
               after={"company_id": "new", "changed_keys": "public, private"})
    assert sentence(both, PEOPLE).sentence == ("Olive Owner changed the company from old to new, and replaced the "
                                               "public and private keys")


def test_a_single_sign_on_sign_in_names_the_provider_as_sign_in_records_it():
    assert sentence(Row("auth.signed_in", after={"method": "sso_google"}), PEOPLE).sentence == \
        "Olive Owner signed in with Google"
