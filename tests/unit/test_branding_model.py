"""The branding model: per-type time-detail defaults, form validation with clear messages, JSON round trips."""

from __future__ import annotations

import json

import pytest
from werkzeug.datastructures import MultiDict

from app.branding.model import (
    FONTS,
    TIME_DETAIL_FIELDS,
    TIME_DETAIL_TYPES,
    Branding,
    BrandingError,
    TimeDetail,
    branding_from_dict,
    branding_from_form,
    branding_to_dict,
    branding_to_form,
    default_branding,
)
from app.invoices.templating import FONT_DIR


def test_fixed_fee_hides_hours_rates_and_amounts_by_default():
    fixed = default_branding().time_detail["fixed_fee"]
    assert (fixed.hours, fixed.hourly_rate, fixed.extended_amount) == (False, False, False)
    assert fixed.show and fixed.ticket_number and fixed.notes


@pytest.mark.parametrize("kind", ["project", "agreement"])
def test_project_and_agreement_hide_ticket_number_and_summary_by_default(kind):
    settings = default_branding().time_detail[kind]
    assert (settings.ticket_number, settings.ticket_summary) == (False, False)
    assert settings.hours and settings.hourly_rate and settings.extended_amount


def test_standard_shows_full_detail_by_default():
    standard = default_branding().time_detail["standard"]
    assert standard.show and standard.ticket_number and standard.ticket_summary and standard.hours
    assert set(default_branding().time_detail) == set(TIME_DETAIL_TYPES)
    assert len(TIME_DETAIL_FIELDS) == 13  # the reference product's 13 toggles


def test_every_offered_font_is_shipped_with_regular_and_bold():
    for font in FONTS.values():
        assert (FONT_DIR / font.regular).is_file() and (FONT_DIR / font.bold).is_file()
    assert any(p.name.startswith("LICENSE") for p in FONT_DIR.iterdir())


def test_the_form_round_trips_to_the_same_branding():
    branding = Branding(brand_colour="#112233", accent_colour="#abcdef", font="noto-serif", logo_position="right",
                        show_remit_to=False, show_tax_ids=True, show_po=False, footer_text="Þekking ehf.\nKt. 1",
                        payment_instructions="IBAN IS14 0159 2600 7654 5510 7303 39",
                        time_detail={**default_branding().time_detail,
                                     "standard": TimeDetail(show=True, billable=True, work_type=True)})
    assert branding_from_form(MultiDict(branding_to_form(branding))) == branding


def test_checkboxes_read_hidden_zero_then_on_as_on():
    form = MultiDict(branding_to_form(default_branding()))
    form.setlist("show_po", ["0", "on"])
    assert branding_from_form(form).show_po is True
    del form["show_po"]
    assert branding_from_form(form).show_po is False


@pytest.mark.parametrize(("field", "value", "message"), [
    ("brand_colour", "red", "#rrggbb"),
    ("accent_colour", "#12345", "#rrggbb"),
    ("brand_colour", "#12345g", "#rrggbb"),
    ("accent_colour", "#123456; background: url(x)", "#rrggbb"),
    ("font", "Comic Sans", "offered fonts"),
    ("font", "../../etc/passwd", "offered fonts"),
    ("logo_position", "top", "left, right or center"),
    ("footer_text", "x" * 1001, "under 1000 characters"),
    ("payment_instructions", "pay\x00now", "control characters"),
])
def test_bad_form_values_raise_a_branding_error_naming_the_field(field, value, message):
    form = branding_to_form(default_branding())
    form[field] = value
    with pytest.raises(BrandingError) as caught:
        branding_from_form(form)
    assert caught.value.field == field and message in caught.value.message


def test_short_hex_colours_are_expanded():
    form = branding_to_form(default_branding())
    form["brand_colour"] = "#ABC"
    assert branding_from_form(form).brand_colour == "#aabbcc"


def test_stored_json_round_trips_and_tolerates_old_or_bad_rows():
    branding = branding_from_form(branding_to_form(default_branding()) | {"font": "dejavu-serif"})
    stored = json.loads(json.dumps(branding_to_dict(branding)))
    assert branding_from_dict(stored) == branding
    assert branding_from_dict(None) == default_branding()
    odd = {"brand_colour": "javascript:", "font": "nope", "time_detail": {"fixed_fee": {"hours": "yes"}},
           "show_po": "true", "unknown": 1}
    restored = branding_from_dict(odd)
    assert restored.brand_colour == default_branding().brand_colour and restored.font == default_branding().font
    assert restored.time_detail["fixed_fee"].hours is False and restored.show_po is True
