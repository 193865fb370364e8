"""List queries over HTTP: paging and Link headers, forward-only, fields, orderBy, count, conditions."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.cwsim.conftest import fetch_all


def links(response) -> dict[str, str]:
    out = {}
    for part in filter(None, (p.strip() for p in response.headers.get("Link", "").split(","))):
        url, rel = part.split(";")
        out[rel.strip().split("=")[1].strip('"')] = url.strip()[1:-1]
    return out


def test_default_page_size_is_25(client):
    assert len(client.get("/finance/invoices").json()) == 25


def test_page_size_above_1000_is_clamped(client):
    response = client.get("/time/entries", params={"pageSize": 5000})
    assert response.status_code == 200
    assert len(response.json()) <= 1000


def test_first_page_links_next_and_last_only(client):
    rel = links(client.get("/finance/invoices", params={"pageSize": 10}))
    assert set(rel) == {"next", "last"}
    assert parse_qs(urlsplit(rel["next"]).query)["page"] == ["2"]
    assert parse_qs(urlsplit(rel["last"]).query)["page"] == ["6"]


def test_middle_page_links_all_four_and_echoes_the_query(client):
    response = client.get("/finance/invoices", params={"pageSize": 10, "page": 3, "conditions": "id > 0"})
    rel = links(response)
    assert set(rel) == {"first", "prev", "next", "last"}
    query = parse_qs(urlsplit(rel["prev"]).query)
    assert query == {"pageSize": ["10"], "page": ["2"], "conditions": ["id > 0"]}
    assert rel["first"].startswith(str(client.base_url).rstrip("/") + "/finance/invoices?")


def test_last_page_has_no_next(client):
    rel = links(client.get("/finance/invoices", params={"pageSize": 10, "page": 6}))
    assert set(rel) == {"first", "prev"}


def test_single_page_result_sends_no_link(client):
    response = client.get("/finance/billingStatuses")
    assert "Link" not in response.headers


def test_page_past_the_end_is_empty(client):
    assert client.get("/finance/invoices", params={"page": 99}).json() == []


def test_pages_cover_every_record_once(client):
    ids = [r["id"] for r in fetch_all(client, "/time/entries")]
    assert len(ids) == len(set(ids)) == client.get("/time/entries/count").json()["count"]


def test_forward_only_walks_by_page_id_and_ends_with_empty_link(client):
    headers = {"pagination-type": "forward-only"}
    seen, params = [], {"pageSize": 7}
    for _ in range(10):
        response = client.get("/company/companies", params=params, headers=headers)
        assert response.status_code == 200
        assert "Link" in response.headers
        seen.extend(r["id"] for r in response.json())
        rel = links(response)
        if not rel:
            assert response.headers["Link"] == ""
            break
        params = {k: v[0] for k, v in parse_qs(urlsplit(rel["next"]).query).items()}
        assert int(params["pageId"]) == seen[-1]
    assert seen == sorted(seen)
    assert len(seen) == client.get("/company/companies/count").json()["count"]


def test_forward_only_refuses_order_by(client):
    response = client.get(
        "/company/companies", params={"orderBy": "name asc"}, headers={"pagination-type": "forward-only"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "InvalidObject"


def test_fields_keeps_only_named_fields_and_sub_fields(client):
    body = client.get("/finance/invoices", params={"fields": "id,company/name,total", "pageSize": 3}).json()
    assert all(set(r) <= {"id", "company", "total"} for r in body)
    assert all(set(r["company"]) == {"name"} for r in body)


def test_fields_applies_to_single_get(client):
    assert client.get("/finance/invoices/1", params={"fields": "id,invoiceNumber"}).json() == {
        "id": 1,
        "invoiceNumber": "INV-10001",
    }


def test_order_by_desc_and_multiple_keys(client):
    body = client.get(
        "/finance/invoices", params={"orderBy": "company/name asc, total desc", "pageSize": 1000}
    ).json()
    keys = [(r["company"]["name"].lower(), -r["total"]) for r in body]
    assert keys == sorted(keys)
    totals = [r["total"] for r in client.get("/finance/invoices", params={"orderBy": "total desc"}).json()]
    assert totals == sorted(totals, reverse=True)


def test_bad_order_by_is_400(client):
    assert client.get("/finance/invoices", params={"orderBy": "total sideways"}).status_code == 400


def test_count_honours_conditions(client):
    all_count = client.get("/finance/invoices/count").json()["count"]
    open_count = client.get(
        "/finance/invoices/count", params={"conditions": "status/isClosed = false"}
    ).json()
    assert 0 < open_count["count"] < all_count


def test_line_items_filter_by_invoice_id_in_list(client):
    body = client.get("/time/entries", params={"conditions": "invoice/id in (4,5)", "pageSize": 1000}).json()
    assert body and {r["invoice"]["id"] for r in body} == {4, 5}


def test_conditions_on_last_updated_bare_and_info(client):
    for field in ("lastUpdated", "_info/lastUpdated"):
        response = client.get(
            "/finance/invoices/count", params={"conditions": f"{field} > [2025-06-01T00:00:00Z]"}
        )
        assert response.status_code == 200
        assert 0 < response.json()["count"] < 60


def test_malformed_condition_answers_400_with_cw_body(client):
    response = client.get("/finance/invoices", params={"conditions": "id = (1"})
    assert response.status_code == 400
    assert response.json()["code"] == "ApiFindCondition"


def test_unknown_condition_field_answers_400(client):
    response = client.get("/finance/invoices", params={"conditions": "typeids = 1"})
    assert response.status_code == 400
    assert response.json() == {"code": "ApiFindCondition", "message": "typeids is not a recognized name."}


def test_bad_page_parameter_is_400(client):
    assert client.get("/finance/invoices", params={"page": "x"}).status_code == 400
