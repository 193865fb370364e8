"""htmx history: a back-button cache miss gets the whole page, and responses that differ by HX-Request say so."""

from __future__ import annotations

from tests.conftest import sign_in


def test_a_history_restore_request_gets_the_whole_page_not_the_fragment(client, make_tenant):
    sign_in(client, make_tenant())
    fragment = client.get("/invoices/", headers={"HX-Request": "true"})
    restored = client.get("/invoices/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" not in fragment.get_data(as_text=True)
    assert "<html" in restored.get_data(as_text=True)


def test_responses_that_differ_by_hx_request_carry_vary(client, make_tenant):
    sign_in(client, make_tenant())
    for headers in ({}, {"HX-Request": "true"}):
        vary = client.get("/invoices/", headers=headers).headers.get("Vary", "")
        assert "HX-Request" in vary and "HX-History-Restore-Request" in vary, vary


def test_an_expired_session_redirect_for_htmx_carries_vary(client):
    response = client.get("/", headers={"HX-Request": "true"})
    assert response.status_code == 401 and "HX-Request" in response.headers.get("Vary", "")
