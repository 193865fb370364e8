"""The seeded data set: a believable MSP built deterministically from a seed.

``build_dataset(seed, invoices)`` is the only entry point; the same arguments always give the same data.
"""

from __future__ import annotations

import random

from cwsim.audittrail import seed_history
from cwsim.seed.context import SeedContext
from cwsim.seed.invoices import CASES, InvoiceSeeder
from cwsim.seed.parties import build_parties
from cwsim.seed.plan import build_invoices
from cwsim.seed.reference import build_reference
from cwsim.seed.work import build_work
from cwsim.store import Dataset, EagerTable

__all__ = ["build_dataset", "CASES"]


def build_dataset(seed: int = 1, invoices: int = 60) -> Dataset:
    ctx = SeedContext(rng=random.Random(seed), invoice_count=invoices)
    build_reference(ctx)
    build_parties(ctx)
    build_work(ctx)
    seeder = InvoiceSeeder(ctx)
    build_invoices(seeder, invoices)
    ctx.data.tables["invoices"] = seeder.invoices
    ctx.data.tables.update(seeder.tables)
    ctx.data.tables["callbacks"] = EagerTable()
    ctx.data.cases = {name: [i for i in ids if i <= invoices] for name, ids in CASES.items()}
    ctx.data.meta = {"seed": seed, "invoices": invoices, "anchor": ctx.anchor.isoformat()}
    seed_history(ctx.data)
    return ctx.data
