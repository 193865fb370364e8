"""Inline edits on the review page, through the routes as htmx sends them, against the simulator: every editable
field's valid edit reaches ConnectWise and the rescanned totals match its own; values typed in the invoice's own
number format; bad values refused beside the field before any request; a change made in ConnectWise meanwhile
writes nothing and shows both values (Keep theirs / Apply mine); ConnectWise's 400 (closed invoice), 403 and 409
shown with nothing changed; a fixed problem's flag clears at once; each edit a timeline event and an audit row."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.connectwise.records import Currency
from app.review import edits, events
from app.review.edits import EditRefused
from app.review.models import Flag, ReviewInvoice
from tests.integration.invoice_helpers import htmx, sim_knobs_at_defaults  # noqa: F401
from tests.integration.test_review_decisions import session_of, swept_tenant

PATHS = {"product": "products", "time": "timeEntries", "expense": "expenseEntries", "invoice": "invoices"}
TEXTS = ("customerDescription", "notes", "topComment", "bottomComment", "customerPO", "reference")
DKK = Currency("DKK", "kr.", 2, ",", ".", False)
USD = Currency("USD", "$", 2, ".", ",", True)


@pytest.fixture()
def swept(request, app, client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return swept_tenant(request, app, client, make_tenant, sim, "Edits Co")


def _open_usd_invoice_with(app, tenant, sim, table: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    """An open, unexported USD invoice in review with a billable line in ``table`` (its first such line)."""
    with session_of(app, tenant) as s:
        ids = s.execute(select(ReviewInvoice.invoice_id).where(ReviewInvoice.is_open, ReviewInvoice.currency == "USD")
                        .order_by(ReviewInvoice.invoice_id)).scalars().all()
    data = sim.state.data
    for invoice_id in ids:
        invoice = data["invoices"].get(invoice_id)
        if invoice.get("glBatch"):
            continue
        if table == "invoices":
            return invoice_id, invoice
        lines = [r for r in data[table].iter(invoice_ids={invoice_id}) if r.get("billableOption") == "Billable"]
        if lines:
            return invoice_id, lines[0]
    raise AssertionError(f"an open USD invoice with a billable {table} line")


def _post(client, invoice_id: int, kind: str, record_id: int, name: str, value: str, **extra: str):  # type: ignore[no-untyped-def]
    return client.post(f"/review/{invoice_id}/lines/{kind}/{record_id}/{name}", data={"value": value, **extra},
                       headers=htmx(client))


def _patches(sim) -> list:  # type: ignore[no-untyped-def]
    return [r for r in sim.requests if r.method == "PATCH"]


def _stored_total(app, tenant, invoice_id: int) -> Decimal:  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as s:
        return s.execute(select(ReviewInvoice.total).where(ReviewInvoice.invoice_id == invoice_id)).scalar_one()


EDITS = [
    ("product", "customerDescription", "Managed firewall, June", "Managed firewall, June"),
    ("product", "quantity", "3", 3.0),
    ("product", "price", "1,234.50", 1234.5),
    ("product", "billableOption", "NoCharge", "NoCharge"),
    ("product", "taxableFlag", "false", False),
    ("time", "notes", "Replaced the core switch\nand tested failover", "Replaced the core switch\nand tested failover"),
    ("time", "invoiceHours", "2.75", 2.75),
    ("time", "billableOption", "DoNotBill", "DoNotBill"),
    ("expense", "notes", "Taxi to the data centre", "Taxi to the data centre"),
    ("expense", "billableOption", "NoCharge", "NoCharge"),
    ("invoice", "topComment", "Thanks for a good quarter.", "Thanks for a good quarter."),
    ("invoice", "bottomComment", "Payment by bank transfer.", "Payment by bank transfer."),
    ("invoice", "customerPO", "PO-7781", "PO-7781"),
    ("invoice", "reference", "Q2 rollout", "Q2 rollout"),
]


@pytest.mark.parametrize(("kind", "name", "typed", "expected"), EDITS, ids=[f"{k}-{n}" for k, n, _t, _e in EDITS])
def test_each_field_edit_reaches_connectwise_and_the_rescanned_totals_match(app, client, sim, swept, kind, name,
                                                                            typed, expected):
    invoice_id, line = _open_usd_invoice_with(app, swept, sim, PATHS[kind])
    record_id = invoice_id if kind == "invoice" else line["id"]
    response = _post(client, invoice_id, kind, record_id, name, typed)
    assert response.status_code == 200, response.get_data(as_text=True)[:800]
    assert sim.state.data[PATHS[kind]].get(record_id)[name] == expected
    cw_total = Decimal(str(sim.state.data["invoices"].get(invoice_id)["total"]))
    assert _stored_total(app, swept, invoice_id) == cw_total
    html = response.get_data(as_text=True)
    assert "Saved in ConnectWise." in html
    for oob in ("review-lines-totals", "review-document", "review-head-total", "review-timeline"):
        assert re.search(f'id="{oob}"[^>]*hx-swap-oob="true"', html), oob
    assert f"${cw_total:,.2f}" in html  # the totals shown are ConnectWise's new ones
    with session_of(app, swept) as s:
        entry = [e for e in events.of_invoice(s, app.extensions["services"].keyring, invoice_id)
                 if e.kind == "edited"][-1]
        assert entry.detail["field"] == name and entry.actor.type == "user"
        audit = s.execute(select(AuditEntry).where(AuditEntry.action == "review.line_edited")
                          .order_by(AuditEntry.id.desc()).limit(1)).scalar_one()
        assert audit.after["field"] == name and audit.after["value"] == expected
        assert audit.before["value"] == (line.get(name) if name not in TEXTS else line.get(name) or "")
        assert audit.actor_type == "user"


def test_a_price_typed_the_danish_way_reads_as_danish():
    price = edits.FIELDS["product"]["price"]
    assert edits.parse(price, "1.234,50", DKK) == 1234.5
    assert edits.parse(price, "12,5", DKK) == 12.5
    assert edits.parse(price, "1.234", DKK) == 1234.0
    for ambiguous in ("1.5", "1,234.50", "12.34"):
        with pytest.raises(EditRefused, match="ambiguous|not a number|decimal"):
            edits.parse(price, ambiguous, DKK)
    assert edits.parse(price, "$1,234.50", USD) == 1234.5
    with pytest.raises(EditRefused):
        edits.parse(price, "1,5", USD)


@pytest.mark.parametrize(("kind", "name", "typed", "says"), [
    ("product", "price", "12.3.4", "more than one decimal mark"),
    ("product", "price", "abc", "not a number"),
    ("product", "price", "20,000,000", "between -10,000,000 and 10,000,000"),
    ("product", "quantity", "-1", "between 0 and 1,000,000"),
    ("product", "customerDescription", "   ", "cannot be empty"),
    ("product", "customerDescription", "x" * 6001, "at most 6,000 characters"),
    ("time", "invoiceHours", "25", "between 0 and 24 per time entry"),
    ("time", "invoiceHours", "1.125", "at most 2 decimals"),
    ("invoice", "customerPO", "P" * 51, "at most 50 characters"),
    ("product", "billableOption", "Maybe", "Pick one of"),
])
def test_a_bad_value_is_refused_beside_the_field_before_any_request(app, client, sim, swept, kind, name, typed, says):
    invoice_id, line = _open_usd_invoice_with(app, swept, sim, PATHS[kind])
    record_id = invoice_id if kind == "invoice" else line["id"]
    before = len(sim.requests)
    response = _post(client, invoice_id, kind, record_id, name, typed)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert says in html.replace("&#34;", '"') and 'role="alert"' in html and 'aria-invalid="true"' in html
    assert len(sim.requests) == before  # nothing left for ConnectWise


def _change_in_connectwise(sim, table: str, record_id: int, name: str, value) -> None:  # type: ignore[no-untyped-def]
    info = dict(sim.state.data[table].get(record_id)["_info"])
    info.update(lastUpdated="2099-01-01T14:02:00Z", updatedBy="jsmith")
    sim.state.data[table].set_fields(record_id, {name: value, "_info": info})


def test_a_change_in_connectwise_meanwhile_writes_nothing_and_shows_both_values(app, client, sim, swept):
    invoice_id, line = _open_usd_invoice_with(app, swept, sim, "products")
    _change_in_connectwise(sim, "products", line["id"], "customerDescription", "Their wording")
    response = _post(client, invoice_id, "product", line["id"], "customerDescription", "My wording")
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "Changed in ConnectWise by jsmith" in html and "Their wording" in html and "My wording" in html
    assert "Keep theirs" in html and "Apply mine" in html and not _patches(sim)
    assert sim.state.data["products"].get(line["id"])["customerDescription"] == "Their wording"

    # Apply mine: written while ConnectWise still has the change the conflict showed.
    response = _post(client, invoice_id, "product", line["id"], "customerDescription", "My wording",
                     accept_seen="2099-01-01T14:02:00Z")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert sim.state.data["products"].get(line["id"])["customerDescription"] == "My wording"


def test_keep_theirs_writes_nothing_and_shows_connectwise_value(app, client, sim, swept):
    invoice_id, line = _open_usd_invoice_with(app, swept, sim, "invoices")
    _change_in_connectwise(sim, "invoices", invoice_id, "reference", "Theirs")
    assert _post(client, invoice_id, "invoice", invoice_id, "reference", "Mine").status_code == 409
    response = client.post(f"/review/{invoice_id}/lines/invoice/{invoice_id}/reference/keep", data={"value": "Mine"},
                           headers=htmx(client))
    assert response.status_code == 200
    assert "Theirs" in response.get_data(as_text=True) and not _patches(sim)


@pytest.mark.parametrize("refusal", ["closed", "forbidden", "conflict"])
def test_a_connectwise_refusal_is_shown_and_nothing_changes(app, client, sim, swept, refusal):
    invoice_id, line = _open_usd_invoice_with(app, swept, sim, "products")
    says = {"closed": "closed in ConnectWise", "forbidden": "security role may not change this product line",
            "conflict": "in use or was being changed there (409)"}[refusal]
    if refusal == "closed":
        sim.state.data["invoices"].set_fields(invoice_id, {"glBatch": {"id": 612, "name": "GL612"}})
    elif refusal == "forbidden":
        sim.configure(forbidden_writes="procurement/products")
    else:
        sim.configure(write_refusal_next=1, write_refusal_status=409)
    total_before = _stored_total(app, swept, invoice_id)
    try:
        response = _post(client, invoice_id, "product", line["id"], "price", "999")
    finally:
        sim.configure(forbidden_writes="", write_refusal_next=0)
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert says in html and "Nothing was changed." in html
    assert sim.state.data["products"].get(line["id"])["price"] == line["price"]
    assert _stored_total(app, swept, invoice_id) == total_before
    with session_of(app, swept) as s:
        assert not s.execute(select(AuditEntry).where(AuditEntry.action == "review.line_edited")).first()


def test_fixing_a_below_cost_price_clears_its_flag_at_once(app, client, sim, swept):
    invoice_id = sim.state.data.cases["below_cost_product"][0]
    with session_of(app, swept) as s:
        flag = s.execute(select(Flag).where(Flag.invoice_id == invoice_id, Flag.rule == "low_margin",
                                            Flag.severity == "error", Flag.cleared_at.is_(None))).scalars().first()
        assert flag is not None
        product_id = int(flag.target_id)
    cost = sim.state.data["products"].get(product_id)["cost"]
    response = _post(client, invoice_id, "product", product_id, "price", f"{cost * 3:.2f}")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    with session_of(app, swept) as s:
        assert s.execute(select(Flag.cleared_at).where(Flag.id == flag.id)).scalar_one() is not None
    assert 'id="review-flags"' in response.get_data(as_text=True)


def test_the_page_shows_values_as_buttons_for_editors_and_the_edit_form_swaps_in(app, client, sim, swept):
    invoice_id, line = _open_usd_invoice_with(app, swept, sim, "products")
    page = client.get(f"/review/{invoice_id}").get_data(as_text=True)
    assert 'id="review-lines"' in page and f'id="cell-product-{line["id"]}-price"' in page
    assert f'hx-get="/review/{invoice_id}/lines/product/{line["id"]}/price/edit"' in page
    form = client.get(f"/review/{invoice_id}/lines/product/{line['id']}/price/edit", headers=htmx(client))
    assert form.status_code == 200 and 'name="value"' in form.get_data(as_text=True)
    back = client.get(f"/review/{invoice_id}/lines/product/{line['id']}/price", headers=htmx(client))
    assert "cell-value" in back.get_data(as_text=True)


def test_an_unchanged_value_sends_nothing(app, client, sim, swept):
    invoice_id, line = _open_usd_invoice_with(app, swept, sim, "products")
    before = len(sim.requests)
    response = _post(client, invoice_id, "product", line["id"], "quantity", f"{line['quantity']:g}")
    assert response.status_code == 200 and len(sim.requests) == before
