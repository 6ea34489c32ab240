"""GraphQL operations the SPA sends, and setup made at Stripe, shared by the end-to-end tests."""

from __future__ import annotations

from typing import Any

import httpx
import stripe

# Concrete error types nested in the interface: valid whichever of them a mutation's union lists.
ERRORS = "... on UserError { __typename code message ... on ValidationError { fields { field message } } }"
STATUS = """hasSubscription subscriptionId status isActive planUid billingInterval overages
  currentPeriodEnd cancelAtPeriodEnd cancelAt canceledAt endedAt trialEnd latestInvoiceId
  entitlements { key enabled limit }"""

CHECKOUT = f"""mutation($input: CheckoutInput!) {{ createCheckoutSession(input: $input) {{
  __typename ... on CheckoutPayload {{ sessionId checkoutUrl }}
  ... on AlreadySubscribedError {{ subscriptionId status }} {ERRORS} }} }}"""
VERIFY = f"""mutation($id: ID!) {{ verifyCheckoutSession(sessionId: $id) {{ __typename
  ... on VerifyCheckoutPayload {{ sessionId status paymentStatus subscription {{ {STATUS} }} }}
  {ERRORS} }} }}"""
STATUS_QUERY = f"query {{ subscriptionStatus {{ {STATUS} }} }}"
CREATE_CUSTOMER = f"""mutation($input: CustomerInput) {{ createCustomer(input: $input) {{
  __typename ... on CustomerPayload {{ customer {{ id email organizationId }} }} {ERRORS} }} }}"""
SUB_RESULT = f"__typename ... on SubscriptionPayload {{ subscription {{ {STATUS} }} }} {ERRORS}"
CREATE_SUBSCRIPTION = f"""mutation($input: CreateSubscriptionInput!) {{
  createSubscription(input: $input) {{ {SUB_RESULT} ... on PaymentDeclinedError {{ declineCode }} }} }}"""
CANCEL = f"mutation($end: Boolean!) {{ cancelSubscription(atPeriodEnd: $end) {{ {SUB_RESULT} }} }}"
RESUME = f"mutation {{ resumeSubscription {{ {SUB_RESULT} }} }}"
CHANGE = f"""mutation($input: ChangePlanInput!) {{ changeSubscriptionPlan(input: $input) {{ {SUB_RESULT} }} }}"""
INVOICES = """query($first: Int!) { invoices(first: $first) { pageInfo { hasNextPage endCursor }
  nodes { id number status amountDue amountPaid currency hostedInvoiceUrl invoicePdf } } }"""
PI_FIELDS = "paymentIntent { id amount currency amountRefunded status failureReason }"
PI_RESULT = f"__typename ... on PaymentIntentPayload {{ {PI_FIELDS} clientSecret }} ... on UserError {{ ... on PaymentDeclinedError {{ declineCode }} }} {ERRORS}"
CREATE_PI = f"mutation($input: PaymentIntentInput!) {{ createPaymentIntent(input: $input) {{ {PI_RESULT} }} }}"
CONFIRM_PI = f"mutation($id: ID!, $pm: String!) {{ confirmPaymentIntent(id: $id, paymentMethod: $pm) {{ {PI_RESULT} }} }}"
CANCEL_PI = f"mutation($id: ID!) {{ cancelPaymentIntent(id: $id) {{ {PI_RESULT} }} }}"
REFUND = f"mutation($id: ID!, $amount: Int) {{ refundPayment(paymentIntentId: $id, amount: $amount) {{ {PI_RESULT} }} }}"
UPDATE_CUSTOMER = f"""mutation($input: CustomerInput!) {{ updateCustomer(input: $input) {{
  __typename ... on CustomerPayload {{ customer {{ id email name }} }} {ERRORS} }} }}"""
DELETE_CUSTOMER = f"""mutation {{ deleteCustomer {{ __typename ... on DeletedPayload {{ id }}
  {ERRORS} }} }}"""
PORTAL_AT = f"""mutation($path: String) {{ createBillingPortalSession(returnPath: $path) {{
  __typename ... on PortalPayload {{ url }} {ERRORS} }} }}"""
PORTAL = (
    'mutation { createBillingPortalSession(returnPath: "/account") '
    f"{{ __typename ... on PortalPayload {{ url }} {ERRORS} }} }}"
)


async def call(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    org: str = "org_a",
    admin: bool = False,
) -> dict[str, Any]:
    headers = {"x-organization-id": org, "x-customer-email": f"{org}@example.com"}
    if admin:
        headers["x-roles"] = "admin"
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def only(data: dict[str, Any]) -> dict[str, Any]:
    """The single top-level field of a result."""
    [value] = data.values()
    result: dict[str, Any] = value
    return result


async def plan_price_at_stripe(
    stripe_client: stripe.StripeClient, name: str, amount: int, lookup_key: str
) -> str:
    """A monthly price made at Stripe directly (as in the dashboard) for one of the plans."""
    price = await stripe_client.v1.prices.create_async(
        params={
            "currency": "usd",
            "unit_amount": amount,
            "recurring": {"interval": "month"},
            "product_data": {"name": name},
            "lookup_key": lookup_key,
        }
    )
    return str(price.id)
