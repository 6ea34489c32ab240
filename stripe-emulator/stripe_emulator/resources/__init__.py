"""Stripe API resources, one module per resource group; each exposes ``ROUTES``."""
