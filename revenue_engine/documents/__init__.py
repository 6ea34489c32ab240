"""Beanie documents, one aggregate per module. No Strawberry and no Stripe imports here."""

from __future__ import annotations

from beanie import Document

from revenue_engine.documents.plan import BillingInterval, Overage, PlanPrice, SubscriptionPlan

#: Every document model; ``db.connect`` initialises them all (and creates their indexes).
DOCUMENT_MODELS: tuple[type[Document], ...] = (SubscriptionPlan,)

__all__ = [
    "DOCUMENT_MODELS",
    "BillingInterval",
    "Overage",
    "PlanPrice",
    "SubscriptionPlan",
]
