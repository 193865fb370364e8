"""The one reader: strict records refuse a wrong type naming kind and field; tolerant ones mark what they could
not read; every record keeps its ConnectWise id and an aware lastUpdated."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.connectwise.errors import MalformedResponse
from app.connectwise.records import (
    USD,
    BillingStatusRecord,
    InvalidRecord,
    InvoiceHeader,
    Member,
    ProductRecord,
    RoutingRecord,
    TimeRecord,
)
from app.invoices.errors import InvalidInvoiceData
from app.invoices.reconstruct import build_document

PRODUCT = {"id": 20001, "invoice": {"id": 3}, "description": "Laptop", "quantity": 2.0, "price": 989.0,
           "extPrice": 1978.0, "billableOption": "Billable", "taxableFlag": True,
           "_info": {"lastUpdated": "2025-06-28T14:03:00Z", "updatedBy": "lmartin"}}


def test_a_record_keeps_its_id_and_an_aware_last_updated_and_reads_money_as_decimal():
    product = ProductRecord.parse(PRODUCT)
    assert (product.id, product.kind, product.invoice_id) == (20001, "product", 3)
    assert product.last_updated == datetime(2025, 6, 28, 14, 3, tzinfo=UTC)
    assert product.ext_price == Decimal("1978.0") and product.degraded == ()


def test_strict_reading_names_the_kind_and_field_never_the_value():
    with pytest.raises(InvalidRecord) as caught:
        ProductRecord.parse({**PRODUCT, "extPrice": "1978.00 secret"})
    assert str(caught.value) == "ConnectWise sent a product whose extPrice is not a number"
    assert (caught.value.kind, caught.value.field) == ("product", "extPrice")
    assert isinstance(caught.value, MalformedResponse) and not caught.value.retryable


def test_tolerant_reading_uses_the_default_and_marks_the_field():
    product = ProductRecord.parse({**PRODUCT, "extPrice": "lots", "description": 7}, tolerant=True)
    assert product.ext_price == 0 and product.description == ""
    assert set(product.degraded) == {"extPrice", "description"}
    omitted = ProductRecord.parse({"id": 1}, tolerant=True)  # ConnectWise omits empty fields: not degraded
    assert omitted.degraded == () and omitted.last_updated is None


@pytest.mark.parametrize("tolerant", [False, True])
def test_a_record_without_a_usable_id_is_refused_in_either_mode(tolerant):
    with pytest.raises(InvalidRecord, match="without id"):
        TimeRecord.parse({"notes": "x"}, tolerant=tolerant)
    with pytest.raises(InvalidRecord, match="id is not an integer"):
        TimeRecord.parse({"id": "100001"}, tolerant=tolerant)
    with pytest.raises(InvalidRecord, match="not an object"):
        TimeRecord.parse(["id", 1], tolerant=tolerant)


def test_a_list_row_without_its_total_is_marked_not_shown_as_zero():
    row = InvoiceHeader.parse({"id": 9, "company": {"id": 1}, "balance": 10.0}, USD, tolerant=True)
    assert "total" in row.degraded and "balance" not in row.degraded
    strict = InvoiceHeader.parse({"id": 9, "company": {"id": 1}}, USD)
    assert strict.total == 0 and strict.degraded == ()


def test_a_member_whose_inactive_flag_does_not_read_is_inactive():
    base = {"id": 141, "firstName": "Jordan", "lastName": "Morales", "officeEmail": "Jordan@Example.com"}
    assert Member.from_api(base).active is True
    member = Member.from_api({**base, "inactiveFlag": "false"})
    assert member is not None and member.active is False and member.degraded == ("inactiveFlag",)
    assert member.email == "jordan@example.com" and member.name == "Jordan Morales"
    assert Member.from_api({"identifier": "x"}) is None and Member.from_api({"id": True}) is None


def test_routing_and_billing_status_records_read_what_review_needs():
    routing = RoutingRecord.parse({"id": 11, "invoice": {"id": 1}, "sequenceNumber": 1,
                                   "member": {"id": 152, "identifier": "lmartin", "name": "Laura Martin"},
                                   "reviewedFlag": True, "dateReviewedUTC": "2025-05-02T11:00:00Z",
                                   "_info": {"lastUpdated": "2025-05-02T11:00:00Z"}})
    assert (routing.invoice_id, routing.member_id, routing.reviewed) == (1, 152, True)
    assert routing.reviewed_at == datetime(2025, 5, 2, 11, tzinfo=UTC)
    status = BillingStatusRecord.parse({"id": 3, "name": "Approved", "closedFlag": False, "inactiveFlag": "no"},
                                       tolerant=True)
    assert status.inactive is True and status.degraded == ("inactiveFlag",)


def test_invoice_errors_build_on_the_record_error():
    header = InvoiceHeader.parse({"id": 3, "company": {"id": 1}}, USD)
    with pytest.raises(InvalidInvoiceData, match="product whose quantity is not a number") as caught:
        build_document(header, {"procurement/products": [{**PRODUCT, "quantity": "2"}]})
    assert isinstance(caught.value, InvalidRecord) and caught.value.field == "quantity"
