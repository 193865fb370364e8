"""A postal address as ConnectWise keeps it (street lines, city, state, zip, country name), unformatted.

Records keep the parts so that a document can print them in the country's own order
(``app.invoices.addresses``); ``us_lines`` is ConnectWise's own one-size layout ("City, ST 10117").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PostalAddress:
    line1: str = ""
    line2: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = ""  # ConnectWise's country name ("Germany"), or whatever was typed

    def us_lines(self) -> tuple[str, ...]:
        """Printable lines in ConnectWise's US layout, empty ones dropped."""
        town = " ".join(p for p in (", ".join(p for p in (self.city, self.state) if p), self.zip) if p)
        return tuple(p for p in (self.line1, self.line2, town, self.country) if p)
