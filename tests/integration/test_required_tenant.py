"""The tenant a tenant page works for: the request's tenant as a plain id, or 404 when there is none."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import NotFound

from app.tenancy import required_tenant_id, set_tenant


def test_required_tenant_id_is_the_requests_tenant(app, make_tenant):
    tenant_id = make_tenant().id
    with app.test_request_context("/"):
        set_tenant(tenant_id)
        assert required_tenant_id() == str(tenant_id)


def test_required_tenant_id_answers_404_when_no_tenant_is_set(app):
    with app.test_request_context("/"), pytest.raises(NotFound):
        required_tenant_id()


def test_required_tenant_id_answers_404_outside_an_app_context():
    with pytest.raises(NotFound):
        required_tenant_id()
