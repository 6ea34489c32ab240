"""Orchestration and pure rules. No GraphQL and no HTTP here; Stripe only through ``gateway``."""
