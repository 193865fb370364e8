"""Watch lists that are picked from names instead of typed: which rule settings they are, where their names come
from (the tenant's own ConnectWise work types, ``/time/workTypes``; ConnectWise's fixed product classes, the values
``ProductItem.productClass`` takes), loading those names for the settings page's picker without ever failing it,
and refusing a newly added name that is not on the list (422 beside the field).

Keywords are not here: they are free text, always typed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from app.connectwise import errors as cw_errors
from app.connectwise.client import Client
from app.connectwise.tenant_client import NotConnected
from app.review.rules import SettingsError

# ConnectWise's own product classes (the ProductItem.productClass enum): the same for every tenant.
PRODUCT_CLASSES = ("Agreement", "Bundle", "Inventory", "NonInventory", "Service")
WORK_TYPE_FIELDS = ("id", "name", "inactiveFlag")
LISTED_UNKNOWN = 3  # names quoted in a refusal; the rest are counted


@dataclass(frozen=True)
class WatchList:
    """A watch-list setting whose entries must be names the list knows."""

    rule: str
    setting: str
    noun: str  # "work type": what the refusal and the picker call one entry
    path: str | None = None  # the ConnectWise list of the tenant's names; None: ``fixed``
    fixed: tuple[str, ...] = ()

    @property
    def field(self) -> str:
        return f"{self.rule}.{self.setting}"

    def refusal(self, unknown: list[str]) -> str:
        quoted = ", ".join(f"\u201c{n}\u201d" for n in unknown[:LISTED_UNKNOWN])
        more = f" and {len(unknown) - LISTED_UNKNOWN} more" if len(unknown) > LISTED_UNKNOWN else ""
        if self.path is None:
            return f"Not a ConnectWise {self.noun}: {quoted}{more}. Pick from {', '.join(self.fixed)}."
        return f"Not a {self.noun} in your ConnectWise: {quoted}{more}. Pick from your ConnectWise names."


WATCH_LISTS: Mapping[str, WatchList] = MappingProxyType({w.field: w for w in (
    WatchList("flagged_work_type", "work_types", "work type", path="time/workTypes"),
    WatchList("product_not_taxable", "product_types", "product class", fixed=PRODUCT_CLASSES),
)})


@dataclass(frozen=True)
class Name:
    name: str
    inactive: bool = False


@dataclass(frozen=True)
class Names:
    """A list's names, or (``names`` None) why they could not be loaded: the field then takes typed entries."""

    names: tuple[Name, ...] | None
    reason: str = ""

    def canonical(self) -> dict[str, str]:
        """Each name by its casefolded form (ConnectWise compares names without case)."""
        return {n.name.casefold(): n.name for n in self.names or ()}


def load_names(watch: WatchList, client: Callable[[], Client]) -> Names:
    """The list's names; never raises for ConnectWise (down, refused, not connected): ``Names(None, reason)``.

    ``client`` makes the tenant's client (its response cache serves a list read a minute ago)."""
    if watch.path is None:
        return _fixed(watch)
    try:
        with client() as cw:
            rows = cw.get_all(watch.path, fields=WORK_TYPE_FIELDS, order_by="name")
    except NotConnected:
        return Names(None, "ConnectWise is not connected")
    except cw_errors.ConnectWiseError as exc:
        return Names(None, str(exc))
    return Names(tuple(_parse(rows)))


def _parse(rows: Iterable[Any]) -> list[Name]:
    """Readable names, once each (a row without a text name is skipped), active before inactive."""
    seen: set[str] = set()
    out: list[Name] = []
    for row in rows:
        name = row.get("name") if isinstance(row, dict) else None
        if not isinstance(name, str) or not name.strip() or name.strip().casefold() in seen:
            continue
        seen.add(name.strip().casefold())
        out.append(Name(name.strip(), row.get("inactiveFlag") is True))
    return sorted(out, key=lambda n: (n.inactive, n.name.casefold()))


def check_added(new: Mapping[str, dict], old: Mapping[str, dict],
                names: Callable[[WatchList], Names]) -> dict[str, dict]:
    """``new`` (validated settings) with each watch list's entries in the list's own spelling.

    Only entries added since ``old`` are checked (a name ConnectWise has since dropped does not block an unrelated
    save), and only against a list that loaded: when ConnectWise cannot be asked, typed entries are accepted, as
    the page said. Raises ``SettingsError`` naming the field for an entry the list does not know."""
    out = {rule: dict(values) for rule, values in new.items()}
    for watch in WATCH_LISTS.values():
        values = list(out.get(watch.rule, {}).get(watch.setting) or [])
        before = {v.casefold() for v in old.get(watch.rule, {}).get(watch.setting) or []}
        added = [v for v in values if v.casefold() not in before]
        if not added:
            continue
        known = names(watch)
        if known.names is None:
            continue
        canonical = known.canonical()
        unknown = [v for v in added if v.casefold() not in canonical]
        if unknown:
            raise SettingsError(watch.field, watch.refusal(unknown))
        out[watch.rule][watch.setting] = [canonical.get(v.casefold(), v) for v in values]
    return out


@dataclass
class Picker:
    """What ``_pickers.html`` draws for one watch list: ``loading`` (typed entries until htmx fetches the names),
    ``loaded`` (the names as checkboxes) or ``failed`` (typed entries and the reason)."""

    watch: WatchList
    label: str
    selected: list[str]
    state: str = "loading"
    choices: tuple[Name, ...] = ()
    reason: str = ""
    url: str = ""
    _chosen: set[str] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self._chosen = {s.casefold() for s in self.selected}

    @property
    def field(self) -> str:
        return self.watch.field

    @property
    def dom_id(self) -> str:
        return f"picker-{self.watch.rule}-{self.watch.setting}"

    def is_selected(self, name: str) -> bool:
        return name.casefold() in self._chosen

    @property
    def unlisted(self) -> list[str]:
        """Selected entries the list does not hold (saved before, or typed while ConnectWise was down)."""
        listed = {c.name.casefold() for c in self.choices}
        return [s for s in self.selected if s.casefold() not in listed]


def picker(watch: WatchList, label: str, selected: Iterable[str], url: str, names: Names | None = None) -> Picker:
    """The picker's state: fixed lists are drawn at once, ConnectWise ones load after the page (``names`` None)."""
    chosen = selected_names(selected)
    if names is None and watch.path is None:
        names = _fixed(watch)
    if names is None:
        return Picker(watch, label, chosen, "loading", url=url)
    if names.names is None:
        return Picker(watch, label, chosen, "failed", reason=names.reason, url=url)
    return Picker(watch, label, chosen, "loaded", names.names, url=url)


def selected_names(values: Iterable[str] | str | None) -> list[str]:
    """Entries as posted (checkbox values and/or typed lines), trimmed, blanks and repeats dropped."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    seen: set[str] = set()
    for value in values:
        for line in str(value).splitlines():
            name = " ".join(line.split())
            if name and name.casefold() not in seen:
                seen.add(name.casefold())
                out.append(name)
    return out


def _fixed(watch: WatchList) -> Names:
    return Names(tuple(Name(n) for n in watch.fixed))
