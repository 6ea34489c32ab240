"""revenue-engine: a GraphQL subscription-billing API on Stripe."""

__version__ = "0.1.0"
