"""The branding model: colours, font, layout choices, footer and payment text, and time-detail settings per type.

Pure data and validation, no storage (the web side stores ``branding_to_dict`` as JSON and the logo separately).
``branding_from_form`` reads the editor's form and raises ``BrandingError(field, message)`` with a message a
person can act on; ``branding_from_dict`` reads stored JSON leniently (unknown keys ignored, bad values fall back
to defaults) so a stored row from an older version never breaks rendering.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any
from urllib.parse import quote, urlsplit

# Time-detail settings exist for these four invoice types (reference product §2.3); other display types borrow
# one of them (app.invoices.document.TIME_DETAIL_TYPE).
TIME_DETAIL_TYPES = ("standard", "fixed_fee", "project", "agreement")
TIME_DETAIL_LABELS = {"standard": "Standard", "fixed_fee": "Fixed Fee", "project": "Project", "agreement": "Agreement"}
LOGO_POSITIONS = ("left", "right", "center")
FOOTER_MAX = 1000
PAYMENT_MAX = 2000
PAY_URL_MAX = 500
# The tokens a Pay link template may hold; each value is URL-encoded into it.
PAY_URL_TOKENS = ("number", "balance", "currency", "company")
_TOKEN = re.compile(r"\{([^{}]*)\}")
_COLOUR = re.compile(r"^#[0-9a-f]{6}$")


@dataclass(frozen=True)
class Font:
    """A shipped Unicode TTF family: files under app/static/fonts/ (regular and bold)."""

    label: str
    css_family: str  # the family name used in CSS (web) and registered with xhtml2pdf (PDF)
    regular: str  # file names under app/static/fonts/
    bold: str
    generic: str  # CSS fallback: sans-serif | serif | monospace


FONTS: dict[str, Font] = {
    "dejavu-sans": Font("DejaVu Sans", "BI DejaVu Sans", "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "sans-serif"),
    "dejavu-serif": Font("DejaVu Serif", "BI DejaVu Serif", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "serif"),
    "noto-sans": Font("Noto Sans", "BI Noto Sans", "NotoSans-Regular.ttf", "NotoSans-Bold.ttf", "sans-serif"),
    "noto-serif": Font("Noto Serif", "BI Noto Serif", "NotoSerif-Regular.ttf", "NotoSerif-Bold.ttf", "serif"),
}
DEFAULT_FONT = "dejavu-sans"
# Characters a family lacks (CJK such as 消費税) are set in this font instead, in both page and PDF.
FALLBACK_FONT = Font("Droid Sans Fallback", "BI Fallback", "DroidSansFallbackFull.ttf", "DroidSansFallbackFull.ttf",
                     "sans-serif")


class BrandingError(ValueError):
    """A bad form value: ``field`` is the form field's name, ``message`` says what to enter instead."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class TimeDetail:
    """The 13 toggles of the time-detail page for one invoice type (reference product §2.3)."""

    show: bool = True  # master switch for the appended page
    dates: bool = True
    notes: bool = True  # when off, the work role is shown in its place
    ticket_number: bool = True
    ticket_summary: bool = True
    hours: bool = True
    hourly_rate: bool = True
    member: bool = True
    work_role: bool = False
    work_type: bool = False
    billable: bool = False
    extended_amount: bool = True
    subtotals: bool = True


TIME_DETAIL_FIELDS = tuple(f.name for f in fields(TimeDetail))
TIME_DETAIL_FIELD_LABELS = {
    "show": "Show time detail", "dates": "Dates", "notes": "Notes (work role when off)",
    "ticket_number": "Ticket number", "ticket_summary": "Ticket summary", "hours": "Hours",
    "hourly_rate": "Hourly rate", "member": "Member", "work_role": "Work role", "work_type": "Work type",
    "billable": "Billable", "extended_amount": "Extended amount", "subtotals": "Subtotals",
}


def default_time_detail(kind: str) -> TimeDetail:
    """Shipped defaults: fixed fee hides hours, rates and amounts; project and agreement hide ticket number and
    summary (they do not use tickets); standard shows full detail."""
    base = TimeDetail()
    if kind == "fixed_fee":
        return replace(base, hours=False, hourly_rate=False, extended_amount=False)
    if kind in ("project", "agreement"):
        return replace(base, ticket_number=False, ticket_summary=False)
    return base


def _default_time_details() -> dict[str, TimeDetail]:
    return {kind: default_time_detail(kind) for kind in TIME_DETAIL_TYPES}


@dataclass(frozen=True)
class Branding:
    brand_colour: str = "#1f3a5f"
    accent_colour: str = "#2a7ab0"
    font: str = DEFAULT_FONT
    logo_position: str = "left"
    show_remit_to: bool = True
    show_tax_ids: bool = True
    show_po: bool = True
    footer_text: str = ""
    payment_instructions: str = ""
    time_detail: dict[str, TimeDetail] = field(default_factory=_default_time_details)
    # The Pay button's link on the public page, e.g. https://pay.example/?invoice={number}&amount={balance}.
    pay_url: str = ""
    # The workspace's locale (tenant_settings.locale, set on the workspace settings page): not stored with the
    # branding, filled in by ``app.branding.store.load`` so every medium dates the document alike.
    locale: str = "en-US"

    def time_detail_for(self, kind: str) -> TimeDetail:
        """Settings for a Branding.time_detail key (unknown keys read as standard)."""
        return self.time_detail.get(kind) or self.time_detail.get("standard") or TimeDetail()

    @property
    def font_info(self) -> Font:
        return FONTS.get(self.font, FONTS[DEFAULT_FONT])


def default_branding() -> Branding:
    return Branding()


# -- validation --------------------------------------------------------------------------------------------------


def check_colour(name: str, value: Any) -> str:
    text = str(value or "").strip().lower()
    if re.fullmatch(r"#[0-9a-f]{3}", text):
        text = "#" + "".join(c * 2 for c in text[1:])
    if not _COLOUR.match(text):
        raise BrandingError(name, "Enter a colour as #rrggbb, for example #1f3a5f")
    return text


def check_pay_url(value: Any) -> str:
    """A Pay link template: empty (no button) or an https URL whose only tokens are ``PAY_URL_TOKENS``."""
    text = str(value or "").strip()
    if not text:
        return ""
    if len(text) > PAY_URL_MAX:
        raise BrandingError("pay_url", f"Keep the Pay link under {PAY_URL_MAX} characters")
    if any(ord(c) <= 32 or ord(c) == 127 for c in text):
        raise BrandingError("pay_url", "Remove the spaces and control characters from the Pay link")
    unknown = [t for t in _TOKEN.findall(text) if t not in PAY_URL_TOKENS]
    if unknown:
        raise BrandingError("pay_url", f"{{{unknown[0]}}} is not a token here: use {{number}}, {{balance}}, "
                                       "{currency} or {company}")
    parts = urlsplit(_TOKEN.sub("x", text))
    if parts.scheme.lower() != "https" or not parts.hostname or "{" in text.split("//", 1)[-1].split("/", 1)[0]:
        raise BrandingError("pay_url", "Enter an https:// link with a fixed host, "
                                       "for example https://pay.example/?invoice={number}&amount={balance}")
    if parts.username or parts.password:
        raise BrandingError("pay_url", "Leave user names and passwords out of the Pay link")
    return text


def pay_url(template: str, **values: str) -> str:
    """The Pay link of ``template`` with each token's value URL-encoded; "" when there is no valid template."""
    try:
        checked = check_pay_url(template)
    except BrandingError:
        return ""
    if not checked:
        return ""
    return _TOKEN.sub(lambda m: quote(str(values.get(m.group(1), "")), safe=""), checked)


def _text(form: Mapping[str, Any], name: str, limit: int) -> str:
    value = str(form.get(name) or "").replace("\r\n", "\n").strip()
    if len(value) > limit:
        raise BrandingError(name, f"Keep this under {limit} characters (it is {len(value)})")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise BrandingError(name, "Remove the control characters from this text")
    return value


def _flag(form: Mapping[str, Any], name: str) -> bool:
    """An HTML checkbox: present with on/true/1/yes (hidden "0" inputs before a checkbox are fine)."""
    values = form.getlist(name) if hasattr(form, "getlist") else [form.get(name)]
    return any(str(v).strip().lower() in ("on", "true", "1", "yes") for v in values if v is not None)


def branding_from_form(form: Mapping[str, Any]) -> Branding:
    """The editor's form (a werkzeug MultiDict or a plain dict) → Branding; BrandingError on the first bad field.

    Field names: brand_colour, accent_colour, font, logo_position, show_remit_to, show_tax_ids, show_po,
    footer_text, payment_instructions, pay_url, and td_<type>_<toggle> checkboxes (e.g. td_fixed_fee_hours).
    """
    font = str(form.get("font") or "").strip()
    if font not in FONTS:
        raise BrandingError("font", "Choose one of the offered fonts")
    position = str(form.get("logo_position") or "").strip()
    if position not in LOGO_POSITIONS:
        raise BrandingError("logo_position", "Choose left, right or center for the logo")
    return Branding(
        brand_colour=check_colour("brand_colour", form.get("brand_colour")),
        accent_colour=check_colour("accent_colour", form.get("accent_colour")),
        font=font, logo_position=position,
        show_remit_to=_flag(form, "show_remit_to"), show_tax_ids=_flag(form, "show_tax_ids"),
        show_po=_flag(form, "show_po"),
        footer_text=_text(form, "footer_text", FOOTER_MAX),
        payment_instructions=_text(form, "payment_instructions", PAYMENT_MAX),
        pay_url=check_pay_url(form.get("pay_url")),
        time_detail={kind: TimeDetail(**{f: _flag(form, f"td_{kind}_{f}") for f in TIME_DETAIL_FIELDS})
                     for kind in TIME_DETAIL_TYPES},
    )


def branding_to_form(branding: Branding) -> dict[str, Any]:
    """The inverse of ``branding_from_form`` (checkbox fields present only when on), for tests and previews."""
    out: dict[str, Any] = {
        "brand_colour": branding.brand_colour, "accent_colour": branding.accent_colour, "font": branding.font,
        "logo_position": branding.logo_position, "footer_text": branding.footer_text,
        "payment_instructions": branding.payment_instructions, "pay_url": branding.pay_url,
    }
    for name in ("show_remit_to", "show_tax_ids", "show_po"):
        if getattr(branding, name):
            out[name] = "on"
    for kind in TIME_DETAIL_TYPES:
        settings = branding.time_detail_for(kind)
        for f in TIME_DETAIL_FIELDS:
            if getattr(settings, f):
                out[f"td_{kind}_{f}"] = "on"
    return out


def branding_to_dict(branding: Branding) -> dict[str, Any]:
    """JSON-safe dict (strings, bools, nested dicts); the locale is the workspace's, not stored here."""
    data = asdict(branding)
    data.pop("locale", None)
    data["time_detail"] = {k: asdict(v) for k, v in branding.time_detail.items()}
    return data


def branding_from_dict(data: Mapping[str, Any] | None) -> Branding:
    """Stored JSON → Branding, leniently: a missing or bad value takes its default."""
    base = default_branding()
    if not isinstance(data, Mapping):
        return base
    values: dict[str, Any] = {}
    for name in ("brand_colour", "accent_colour"):
        try:
            values[name] = check_colour(name, data.get(name))
        except BrandingError:
            pass
    if data.get("font") in FONTS:
        values["font"] = data["font"]
    if data.get("logo_position") in LOGO_POSITIONS:
        values["logo_position"] = data["logo_position"]
    for name in ("show_remit_to", "show_tax_ids", "show_po"):
        if isinstance(data.get(name), bool):
            values[name] = data[name]
    for name, limit in (("footer_text", FOOTER_MAX), ("payment_instructions", PAYMENT_MAX)):
        if isinstance(data.get(name), str):
            values[name] = data[name][:limit]
    if isinstance(data.get("pay_url"), str):
        try:
            values["pay_url"] = check_pay_url(data["pay_url"])
        except BrandingError:
            pass
    stored = data.get("time_detail")
    details = dict(base.time_detail)
    if isinstance(stored, Mapping):
        for kind in TIME_DETAIL_TYPES:
            entry = stored.get(kind)
            if isinstance(entry, Mapping):
                default = default_time_detail(kind)
                details[kind] = TimeDetail(**{f: entry[f] if isinstance(entry.get(f), bool) else getattr(default, f)
                                              for f in TIME_DETAIL_FIELDS})
    values["time_detail"] = details
    return replace(base, **values)
