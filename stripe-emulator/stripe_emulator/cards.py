"""Stripe's test payment methods and how each one behaves.

The ids are Stripe's documented test PaymentMethods (``pm_card_visa`` …). Using one with a
customer or a payment creates a fresh ``pm_…`` object cloned from it, as Stripe does. Decline
cards fail when attached to a customer (Stripe verifies the card), except
``pm_card_chargeCustomerFail`` which attaches fine and then fails every charge — the card to use
for renewal failures and dunning.
"""

from __future__ import annotations

from dataclasses import dataclass

from stripe_emulator.store import JSON


@dataclass(frozen=True)
class TestCard:
    brand: str
    last4: str
    decline_code: str | None = None
    error_code: str = "card_declined"
    message: str = "Your card was declined."
    attach_fails: bool = False
    funding: str = "credit"
    label: str = ""
    # 3D Secure on every payment (Stripe's 4000002760003184): a buyer on a hosted page
    # authenticates; an off-session charge (a renewal) leaves the PaymentIntent requires_action.
    requires_action: bool = False


_DECLINED = "Your card was declined."

TEST_CARDS: dict[str, TestCard] = {
    "pm_card_visa": TestCard("visa", "4242", label="Visa — succeeds"),
    "pm_card_mastercard": TestCard("mastercard", "4444", label="Mastercard — succeeds"),
    "pm_card_amex": TestCard("amex", "8431", label="American Express — succeeds"),
    "pm_card_chargeDeclined": TestCard(
        "visa", "0002", "generic_decline", attach_fails=True, label="Declined (generic)"
    ),
    "pm_card_chargeDeclinedInsufficientFunds": TestCard(
        "visa",
        "9995",
        "insufficient_funds",
        message="Your card has insufficient funds.",
        attach_fails=True,
        label="Declined — insufficient funds",
    ),
    "pm_card_chargeDeclinedLostCard": TestCard(
        "visa", "9987", "lost_card", attach_fails=True, label="Declined — lost card"
    ),
    "pm_card_chargeDeclinedFraudulent": TestCard(
        "visa", "0019", "fraudulent", attach_fails=True, label="Declined — fraudulent"
    ),
    "pm_card_chargeDeclinedExpiredCard": TestCard(
        "visa",
        "0069",
        "expired_card",
        error_code="expired_card",
        message="Your card has expired.",
        attach_fails=True,
        label="Declined — expired card",
    ),
    "pm_card_chargeDeclinedProcessingError": TestCard(
        "visa",
        "0119",
        "processing_error",
        error_code="processing_error",
        message="An error occurred while processing your card. Try again in a little bit.",
        attach_fails=True,
        label="Declined — processing error",
    ),
    "pm_card_chargeCustomerFail": TestCard(
        "visa", "0341", "generic_decline", label="Attaches, then every charge fails"
    ),
    "pm_card_authenticationRequired": TestCard(
        "visa",
        "3184",
        requires_action=True,
        label="3D Secure on every payment — renewals need the customer",
    ),
}

# Card tokens (``card[token]=tok_visa``) map onto the same behaviours.
TOKENS: dict[str, str] = {
    "tok_visa": "pm_card_visa",
    "tok_mastercard": "pm_card_mastercard",
    "tok_amex": "pm_card_amex",
    "tok_chargeDeclined": "pm_card_chargeDeclined",
    "tok_chargeDeclinedInsufficientFunds": "pm_card_chargeDeclinedInsufficientFunds",
    "tok_chargeCustomerFail": "pm_card_chargeCustomerFail",
    "tok_authenticationRequired": "pm_card_authenticationRequired",
}

# The choices offered on the hosted checkout and portal pages.
PAGE_CHOICES = (
    "pm_card_visa",
    "pm_card_chargeDeclined",
    "pm_card_chargeDeclinedInsufficientFunds",
    "pm_card_chargeCustomerFail",
    "pm_card_authenticationRequired",
)

_EMPTY_ADDRESS: JSON = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}


def card_details(card: TestCard) -> JSON:
    """The ``card`` hash of a PaymentMethod."""
    return {
        "brand": card.brand,
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": "pass",
        },
        "country": "US",
        "display_brand": card.brand,
        "exp_month": 12,
        "exp_year": 2034,
        "fingerprint": f"emu{card.brand[:4]}{card.last4}",
        "funding": card.funding,
        "generated_from": None,
        "last4": card.last4,
        "networks": {"available": [card.brand], "preferred": None},
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
        "regulated_status": "unregulated",
    }


def charge_card_details(card: TestCard) -> JSON:
    """``payment_method_details.card`` of a Charge."""
    return {
        "amount_authorized": None,
        "authorization_code": None,
        "brand": card.brand,
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": "pass",
        },
        "country": "US",
        "exp_month": 12,
        "exp_year": 2034,
        "fingerprint": f"emu{card.brand[:4]}{card.last4}",
        "funding": card.funding,
        "last4": card.last4,
        "mandate": None,
        "network": card.brand,
        "network_transaction_id": None,
        "regulated_status": "unregulated",
        "three_d_secure": None,
        "wallet": None,
    }


def billing_details(email: str | None = None, name: str | None = None) -> JSON:
    return {
        "address": dict(_EMPTY_ADDRESS),
        "email": email,
        "name": name,
        "phone": None,
        "tax_id": None,
    }


@dataclass(frozen=True)
class TestBankAccount:
    """A US bank account for ACH Direct Debit, a *delayed notification* payment method.

    Stripe's docs: an ACH debit's PaymentIntent goes to ``processing`` when confirmed and only
    later to ``succeeded`` (or back to ``requires_payment_method`` when the bank returns it);
    payments take up to 4 business days. Test routing number 110000000 with account
    000123456789 succeeds, 000111111113 fails (account closed).
    """

    last4: str
    failure_code: str | None = None
    message: str = ""
    label: str = ""
    routing_number: str = "110000000"
    settle_seconds: int = 4 * 86400


TEST_BANK_ACCOUNTS: dict[str, TestBankAccount] = {
    "pm_usBankAccount_success": TestBankAccount(
        "6789", label="US bank account 000123456789 — debit succeeds later"
    ),
    "pm_usBankAccount_accountClosed": TestBankAccount(
        "1113",
        "account_closed",
        "The customer's bank account has been closed.",
        label="US bank account 000111111113 — debit fails later (account closed)",
    ),
}


def bank_details(account: TestBankAccount) -> JSON:
    """The ``us_bank_account`` hash of a PaymentMethod."""
    return {
        "account_holder_type": "individual",
        "account_type": "checking",
        "bank_name": "STRIPE TEST BANK",
        "financial_connections_account": None,
        "fingerprint": f"emuach{account.last4}",
        "last4": account.last4,
        "networks": {"preferred": "ach", "supported": ["ach"]},
        "routing_number": account.routing_number,
        "status_details": None,
    }


def charge_bank_details(account: TestBankAccount) -> JSON:
    """``payment_method_details.us_bank_account`` of a Charge."""
    return {
        "account_holder_type": "individual",
        "account_type": "checking",
        "bank_name": "STRIPE TEST BANK",
        "fingerprint": f"emuach{account.last4}",
        "last4": account.last4,
        "mandate": None,
        "payment_reference": None,
        "routing_number": account.routing_number,
    }
