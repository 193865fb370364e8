"""Auth, required headers, codebases, company info, and error bodies for bad routes and methods."""

from __future__ import annotations

import httpx

from tests.cwsim.conftest import ACCEPT

UNAUTHENTICATED = {"code": "ConnectWiseApi", "message": "UserNotAuthenticated"}


def get(sim, path, auth=None, headers=None):
    default_auth = (f"{sim.company_id}+{sim.public_key}", sim.private_key)
    return httpx.get(
        sim.api_url + path,
        auth=default_auth if auth is None else auth,
        headers={"clientId": "x", **(headers or {})},
    )


def test_company_info_reports_the_versioned_codebase(sim):
    body = httpx.get(f"{sim.url}/login/companyinfo/{sim.company_id}").json()
    assert body["Codebase"] == "v2025_1/"
    assert body["CompanyID"] == sim.company_id
    assert {"CompanyName", "VersionCode", "VersionNumber", "IsCloud"} <= set(body)


def test_both_codebases_serve_the_api(sim):
    auth = (f"{sim.company_id}+{sim.public_key}", sim.private_key)
    for codebase in ("v4_6_release", "v2025_1"):
        response = httpx.get(
            f"{sim.url}/{codebase}/apis/3.0/system/info", auth=auth, headers={"clientId": "x"}
        )
        assert response.status_code == 200
        assert response.json()["version"].startswith("v2025.1")


def test_hrefs_follow_the_codebase_and_host_of_the_request(sim):
    auth = (f"{sim.company_id}+{sim.public_key}", sim.private_key)
    body = httpx.get(
        f"{sim.url}/v4_6_release/apis/3.0/finance/invoices/1", auth=auth, headers={"clientId": "x"}
    ).json()
    assert body["_info"]["products_href"] == (
        f"{sim.url}/v4_6_release/apis/3.0/procurement/products?conditions=invoice/id=1"
    )
    assert body["company"]["_info"]["company_href"].startswith(f"{sim.url}/v4_6_release/apis/3.0/company/")


def test_missing_credentials_answer_401_with_the_real_body(sim):
    response = httpx.get(sim.api_url + "/finance/invoices", headers={"clientId": "x"})
    assert response.status_code == 401
    assert response.json() == UNAUTHENTICATED


def test_wrong_private_key_answers_401(sim):
    response = get(sim, "/finance/invoices", auth=(f"{sim.company_id}+{sim.public_key}", "nope"))
    assert (response.status_code, response.json()) == (401, UNAUTHENTICATED)


def test_wrong_company_answers_401(sim):
    response = get(sim, "/finance/invoices", auth=(f"othercompany+{sim.public_key}", sim.private_key))
    assert response.status_code == 401


def test_company_id_is_case_insensitive(sim):
    auth = (f"{sim.company_id.upper()}+{sim.public_key}", sim.private_key)
    assert get(sim, "/system/info", auth=auth).status_code == 200


def test_missing_client_id_is_refused(sim):
    auth = (f"{sim.company_id}+{sim.public_key}", sim.private_key)
    response = httpx.get(sim.api_url + "/system/info", auth=auth)
    assert response.status_code == 400
    assert "clientId" in response.json()["message"]


def test_client_id_header_name_is_case_insensitive(sim):
    auth = (f"{sim.company_id}+{sim.public_key}", sim.private_key)
    for name in ("clientid", "ClientID", "CLIENTID"):
        assert httpx.get(sim.api_url + "/system/info", auth=auth, headers={name: "x"}).status_code == 200


def test_versioned_and_plain_accept_headers_are_accepted(sim):
    for accept in (ACCEPT, "application/vnd.connectwise.com+json", "application/json"):
        assert get(sim, "/system/info", headers={"Accept": accept}).status_code == 200


def test_unknown_id_answers_404_not_found(client):
    response = client.get("/finance/invoices/987654")
    assert response.status_code == 404
    assert response.json() == {"code": "NotFound", "message": "Invoice 987654 not found"}


def test_unknown_endpoint_answers_404_endpoint_missing(client):
    response = client.get("/finance/invoices/1/timeentries")
    assert response.status_code == 404
    assert response.json() == {"code": "ConnectWiseApi", "message": "The endpoint does not exist."}


def test_unsupported_method_answers_405(client):
    # Members have no DELETE in the API (API-NOTES: GET PUT PATCH); invoices do, so they are no example of this.
    response = client.delete("/system/members/1")
    assert response.status_code == 405
    assert response.json()["code"] == "ConnectWiseApi"


def test_sub_resources_404_for_unknown_parent(client):
    response = client.get("/finance/invoices/987654/payments")
    assert response.status_code == 404
    assert response.json()["code"] == "NotFound"


def test_pdf_is_a_valid_pdf(client):
    response = client.get("/finance/invoices/1/pdf")
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-1.4") and response.content.rstrip().endswith(b"%%EOF")
    assert b"INV-10001" in response.content


def test_responses_carry_cw_style_headers(client):
    response = client.get("/system/info")
    assert response.headers["x-cw-request-id"]
    assert response.headers["content-type"].startswith("application/json")


def test_callbacks_can_be_registered_listed_and_deleted(fresh_client):
    created = fresh_client.post(
        "/system/callbacks",
        json={
            "url": "https://example.test/hook?recordId=",
            "objectId": 1,
            "type": "invoice",
            "level": "owner",
        },
    )
    assert created.status_code == 201
    cid = created.json()["id"]
    assert fresh_client.get("/system/callbacks/count").json() == {"count": 1}
    assert fresh_client.delete(f"/system/callbacks/{cid}").status_code == 204
    assert fresh_client.get(f"/system/callbacks/{cid}").status_code == 404


def test_callback_without_url_is_invalid_object(fresh_client):
    response = fresh_client.post(
        "/system/callbacks", json={"objectId": 1, "type": "invoice", "level": "owner"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "InvalidObject" and body["errors"][0]["field"] == "url"
