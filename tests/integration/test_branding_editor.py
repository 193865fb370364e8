"""The branding editor: every setting saved and audited (logo as a hash), live preview of unsaved settings on a real
invoice, logo uploads (PNG/JPEG by content only, re-encoded, SVG refused), brand CSS and logo served by URL."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from PIL import Image, PngImagePlugin
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.branding.model import branding_from_form, branding_to_form, default_branding
from app.branding.models import BrandingSettings
from app.tenancy import tenant_session
from tests.conftest import csrf_of, sign_in
from tests.integration.invoice_helpers import (  # noqa: F401 (fixtures)
    add_user,
    connected_tenant,
    htmx,
    sim_knobs_at_defaults,
)


def _png(size=(300, 120), colour=(200, 30, 30, 255), text_chunk: str | None = None) -> bytes:  # type: ignore[no-untyped-def]
    img = Image.new("RGBA", size, colour)
    out = io.BytesIO()
    info = None
    if text_chunk:
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", text_chunk)
    img.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def _jpeg_with_exif() -> bytes:
    img = Image.new("RGB", (400, 200), (20, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam Maker"  # Make
    exif[0x8298] = "Copyright hidden-owner"  # Copyright
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif)
    return out.getvalue()


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def _form(client, **changes):  # type: ignore[no-untyped-def]
    data = {**branding_to_form(default_branding()), "page_size": "A4", "csrf_token": csrf_of(client),
            "preview_invoice": "3"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _stored(app, tenant_id) -> BrandingSettings | None:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as session:
        return session.get(BrandingSettings, tenant_id)


def _audits(app, tenant_id) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as session:
        return list(session.execute(select(AuditEntry).where(AuditEntry.action == "branding.saved")
                                    .order_by(AuditEntry.id)).scalars())


def test_the_editor_shows_every_setting_and_a_preview_that_loads_by_itself(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    html = client.get("/settings/branding/").get_data(as_text=True)
    for name in ("brand_colour", "accent_colour", "font", "logo_position", "show_remit_to", "show_tax_ids",
                 "show_po", "footer_text", "payment_instructions", "page_size", "logo", "preview_invoice",
                 "td_fixed_fee_hours", "td_agreement_ticket_number", "td_standard_subtotals"):
        assert f'name="{name}"' in html, name
    assert 'hx-post="/settings/branding/preview"' in html and 'hx-trigger="load, input delay:350ms"' in html
    assert 'enctype="multipart/form-data"' in html
    # Shipped defaults per type: fixed fee hides hours, project hides ticket numbers.
    assert 'name="td_fixed_fee_hours" aria-label="Fixed Fee: Hours" >' in html
    assert re.search(r'name="td_standard_hours"[^>]*checked', html)
    assert not re.search(r'name="td_project_ticket_number"[^>]*checked', html)
    assert "INV-10" in html  # the picker lists real invoices


def test_only_owners_and_admins_reach_the_editor(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    for role in ("viewer", "reviewer", "billing_manager"):
        other = app.test_client()
        sign_in(other, t, add_user(app, t, role))
        assert other.get("/settings/branding/").status_code == 403
        assert other.post("/settings/branding/", data=_form(other)).status_code == 403
        assert other.post("/settings/branding/preview", data=_form(other), headers=htmx(other)).status_code == 403
    admin = app.test_client()
    sign_in(admin, t, add_user(app, t, "admin"))
    assert admin.get("/settings/branding/").status_code == 200


def test_saving_stores_every_setting_and_audits_only_what_changed(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    form = _form(client, brand_colour="#112233", accent_colour="#AABBCC", font="noto-serif", logo_position="right",
                 footer_text="Þekking ehf. · Zażółć gęślą jaźń · € ₹ ¥", payment_instructions="IBAN IS12 3456",
                 page_size="Letter", show_po=None, td_fixed_fee_hours="on", td_standard_notes=None)
    response = client.post("/settings/branding/", data=form)
    assert response.status_code == 302
    row = _stored(app, t.id)
    expected = branding_from_form({k: v for k, v in form.items()})
    from app.branding.model import branding_from_dict

    assert branding_from_dict(row.settings) == expected
    assert row.settings["page_size"] == "Letter" and row.version == 1
    entries = _audits(app, t.id)
    assert len(entries) == 1
    after = entries[0].after
    assert after["brand_colour"] == "#112233" and after["accent_colour"] == "#aabbcc"
    assert after["font"] == "noto-serif" and after["show_po"] is False
    assert entries[0].before["font"] == "dejavu-sans" and entries[0].source_ip
    assert "time_detail.fixed_fee" in after and "time_detail.project" not in after
    # Saving the same again is no event.
    assert client.post("/settings/branding/", data=form).status_code == 302
    assert len(_audits(app, t.id)) == 1
    page = client.get("/settings/branding/").get_data(as_text=True)
    assert 'value="#112233"' in page and "Þekking ehf." in page


@pytest.mark.parametrize("field,value,message", [
    ("brand_colour", "red; background:url(x)", "#rrggbb"),
    ("font", "Comic Sans", "fonts"),
    ("logo_position", "top", "left, right or center"),
    ("footer_text", "x" * 1001, "under 1000"),
    ("page_size", "A3", "A4 or Letter"),
])
def test_bad_settings_answer_422_with_an_inline_message_and_save_nothing(app, client, make_tenant, sim, field, value,
                                                                       message):
    t = connected_tenant(client, make_tenant, sim)
    response = client.post("/settings/branding/", data=_form(client, **{field: value}))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html and "field-error" in html
    assert _stored(app, t.id) is None and _audits(app, t.id) == []


def test_a_png_logo_is_re_encoded_without_its_metadata_and_audited_as_a_hash(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    upload = _png(text_chunk="secret-author-note") + b"<script>trailing()</script>"
    form = _form(client)
    form["logo"] = (io.BytesIO(upload), "logo.png", "image/png")
    assert client.post("/settings/branding/", data=form, content_type="multipart/form-data").status_code == 302
    row = _stored(app, t.id)
    assert row.logo_mime == "image/png" and row.logo.startswith(b"\x89PNG")
    assert b"secret-author-note" not in row.logo and b"trailing" not in row.logo
    assert row.logo_sha256 == hashlib.sha256(row.logo).hexdigest()
    with Image.open(io.BytesIO(row.logo)) as img:
        assert img.size == (300, 120) and "Comment" not in img.info
    entry = _audits(app, t.id)[-1]
    assert entry.after["logo_sha256"] == row.logo_sha256 and entry.before["logo_sha256"] is None
    assert "iVBOR" not in str(entry.after)  # never the bytes (base64 of a PNG starts so)
    served = client.get(f"/branding/{t.id}/logo/{row.version}")
    assert served.status_code == 200 and served.mimetype == "image/png" and served.data == row.logo


def test_a_jpeg_logo_loses_its_exif_and_large_logos_are_scaled_down(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    form = _form(client)
    form["logo"] = (io.BytesIO(_jpeg_with_exif()), "photo.jpg", "image/jpeg")
    assert client.post("/settings/branding/", data=form, content_type="multipart/form-data").status_code == 302
    row = _stored(app, t.id)
    assert row.logo_mime == "image/jpeg" and b"SecretCam" not in row.logo and b"hidden-owner" not in row.logo
    form = _form(client)
    form["logo"] = (io.BytesIO(_png(size=(3000, 1000))), "big.png", "image/png")
    assert client.post("/settings/branding/", data=form, content_type="multipart/form-data").status_code == 302
    with Image.open(io.BytesIO(_stored(app, t.id).logo)) as img:
        assert img.width <= 1200 and img.height <= 600


@pytest.mark.parametrize("content,name,declared,message", [
    (SVG, "logo.svg", "image/svg+xml", "SVG logos are not accepted"),
    (SVG, "logo.png", "image/png", "SVG logos are not accepted"),  # the name and type lie; the content decides
    (b"GIF89a" + b"\x00" * 40, "logo.gif", "image/gif", "PNG or JPEG"),
    (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "broken.png", "image/png", "not a readable PNG or JPEG"),
    (b"%PDF-1.7\n", "logo.jpg", "image/jpeg", "PNG or JPEG"),
])
def test_anything_but_a_real_png_or_jpeg_is_refused_inline(app, client, make_tenant, sim, content, name, declared,
                                                           message):
    t = connected_tenant(client, make_tenant, sim)
    form = _form(client)
    form["logo"] = (io.BytesIO(content), name, declared)
    response = client.post("/settings/branding/", data=form, content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and message in html and 'id="logo-error"' in html
    assert _stored(app, t.id) is None


def test_an_oversized_logo_is_refused(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    form = _form(client)
    form["logo"] = (io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\x00" * (1024 * 1024 + 10)), "huge.png", "image/png")
    response = client.post("/settings/branding/", data=form, content_type="multipart/form-data")
    assert response.status_code == 422 and "at most 1024 KB" in response.get_data(as_text=True)
    assert _stored(app, t.id) is None


def test_removing_the_logo_is_saved_and_audited(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    form = _form(client)
    form["logo"] = (io.BytesIO(_png()), "logo.png", "image/png")
    client.post("/settings/branding/", data=form, content_type="multipart/form-data")
    sha = _stored(app, t.id).logo_sha256
    assert client.post("/settings/branding/", data=_form(client, remove_logo="on")).status_code == 302
    row = _stored(app, t.id)
    assert row.logo is None and row.logo_sha256 is None
    entry = _audits(app, t.id)[-1]
    assert entry.before == {"logo_sha256": sha} and entry.after == {"logo_sha256": None}


def test_the_preview_renders_unsaved_settings_on_the_picked_invoice(app, client, make_tenant, sim, redis_conn):
    t = connected_tenant(client, make_tenant, sim)
    form = _form(client, brand_colour="#ab12cd", footer_text="Unsaved footer words", preview_invoice="4")
    response = client.post("/settings/branding/preview", data=form, headers=htmx(client))
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert "INV-10004" in html and "Unsaved footer words" in html and "bi-invoice" in html
    css_url = re.search(r'<link rel="stylesheet" href="([^"]+)">', html).group(1)
    css = client.get(css_url)
    assert css.status_code == 200 and css.mimetype == "text/css" and "#ab12cd" in css.get_data(as_text=True)
    assert _stored(app, t.id) is None  # nothing saved
    # Another tenant cannot read this tenant's preview stylesheet.
    other = app.test_client()
    connected_tenant(other, make_tenant, sim, "Other")
    assert other.get(css_url).status_code == 404


def test_the_preview_shows_an_unsaved_logo_from_its_re_encoded_bytes(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    form = _form(client)
    form["logo"] = (io.BytesIO(_png(text_chunk="meta-in-preview")), "logo.png", "image/png")
    html = client.post("/settings/branding/preview", data=form, headers=htmx(client),
                       content_type="multipart/form-data").get_data(as_text=True)
    assert 'src="data:image/png;base64,' in html
    import base64

    encoded = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert b"meta-in-preview" not in base64.b64decode(encoded)
    form = _form(client)
    form["logo"] = (io.BytesIO(SVG), "logo.svg", "image/svg+xml")
    html = client.post("/settings/branding/preview", data=form, headers=htmx(client),
                       content_type="multipart/form-data").get_data(as_text=True)
    assert "Logo not used: SVG logos are not accepted" in html and "<svg" not in html


def test_the_preview_explains_bad_input_and_missing_connections_instead_of_failing(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    html = client.post("/settings/branding/preview", data=_form(client, brand_colour="nope"),
                       headers=htmx(client)).get_data(as_text=True)
    assert "Preview paused" in html
    html = client.post("/settings/branding/preview", data=_form(client, preview_invoice="99999"),
                       headers=htmx(client)).get_data(as_text=True)
    assert "no invoice 99999" in html
    lonely = app.test_client()
    sign_in(lonely, make_tenant("Unconnected"))
    assert lonely.get("/settings/branding/").status_code == 200
    html = lonely.post("/settings/branding/preview", data=_form(lonely), headers=htmx(lonely)).get_data(as_text=True)
    assert "Connect ConnectWise" in html


def test_brand_css_and_logo_urls_serve_only_the_signed_in_tenant(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    client.post("/settings/branding/", data=_form(client, brand_colour="#0a0b0c"))
    css = client.get(f"/branding/{t.id}/1.css")
    assert css.status_code == 200 and "#0a0b0c" in css.get_data(as_text=True)
    assert "max-age=604800" in css.headers["Cache-Control"]
    other = app.test_client()
    connected_tenant(other, make_tenant, sim, "Other")
    assert other.get(f"/branding/{t.id}/1.css").status_code == 404
    assert app.test_client().get(f"/branding/{t.id}/1.css").status_code in (302, 401)


def test_saved_branding_shows_on_the_public_page_and_its_assets(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    form = _form(client, brand_colour="#123abc", logo_position="center", footer_text="Public footer")
    form["logo"] = (io.BytesIO(_png()), "logo.png", "image/png")
    client.post("/settings/branding/", data=form, content_type="multipart/form-data")
    from tests.integration.invoice_helpers import make_link

    token = make_link(client, 3)
    visitor = app.test_client()
    html = visitor.get(f"/i/{token}").get_data(as_text=True)
    assert "Public footer" in html and f"/i/{token}/logo" in html and "bi-logo-center" in html
    assert "#123abc" in visitor.get(f"/i/{token}/brand.css").get_data(as_text=True)
    logo = visitor.get(f"/i/{token}/logo?v=1")
    assert logo.status_code == 200 and logo.mimetype == "image/png"
