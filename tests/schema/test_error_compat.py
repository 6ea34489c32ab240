"""Documents written against the old, shared result unions keep validating (``schema.compat``):
a fragment on an error type a mutation no longer lists is accepted and never matches; any other
impossible fragment is refused as GraphQL has it."""

from __future__ import annotations

import httpx
import pytest

from tests.gql import MEMBER, gql

#: cancelSubscription's union no longer lists PaymentDeclinedError or ValidationError.
OLD_CANCEL = """
mutation { cancelSubscription(atPeriodEnd: true) {
  __typename
  ... on PaymentDeclinedError { code declineCode }
  ... on ValidationError { fields { field } }
  ...Declined
  ... on UserError { code message }
} }
fragment Declined on PaymentDeclinedError { message }
"""


async def test_an_old_error_fragment_validates_and_never_matches(client: httpx.AsyncClient) -> None:
    body = await gql(client, OLD_CANCEL, headers=MEMBER)
    assert "errors" not in body, body
    result = body["data"]["cancelSubscription"]
    assert result["__typename"] == "BillingStateError"  # this organization has no subscription
    assert result["code"] == "NO_SUBSCRIPTION"
    assert "declineCode" not in result


@pytest.mark.parametrize(
    "query",
    [
        # not an error type, on a result union
        "mutation { cancelSubscription(atPeriodEnd: true) { ... on Plan { uid } } }",
        # an error type where no result union is
        "{ plans { ... on PaymentDeclinedError { code } } }",
        "{ plans { ...D } } fragment D on PaymentDeclinedError { code }",
    ],
)
async def test_other_impossible_fragments_are_still_refused(
    client: httpx.AsyncClient, query: str
) -> None:
    body = await gql(client, query, headers=MEMBER)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "cannot be spread here" in body["errors"][0]["message"]
