"""Money rules: integer minor units of an ISO 4217 currency that Stripe settles in."""

from __future__ import annotations

#: ISO 4217 codes (lower case, as Stripe writes them) accepted for prices.
CURRENCIES: frozenset[str] = frozenset(
    [
        "aed",
        "afn",
        "all",
        "amd",
        "ang",
        "aoa",
        "ars",
        "aud",
        "awg",
        "azn",
        "bam",
        "bbd",
        "bdt",
        "bgn",
        "bhd",
        "bif",
        "bmd",
        "bnd",
        "bob",
        "brl",
        "bsd",
        "bwp",
        "byn",
        "bzd",
        "cad",
        "cdf",
        "chf",
        "clp",
        "cny",
        "cop",
        "crc",
        "cve",
        "czk",
        "djf",
        "dkk",
        "dop",
        "dzd",
        "egp",
        "etb",
        "eur",
        "fjd",
        "fkp",
        "gbp",
        "gel",
        "gip",
        "gmd",
        "gnf",
        "gtq",
        "gyd",
        "hkd",
        "hnl",
        "htg",
        "huf",
        "idr",
        "ils",
        "inr",
        "isk",
        "jmd",
        "jod",
        "jpy",
        "kes",
        "kgs",
        "khr",
        "kmf",
        "krw",
        "kwd",
        "kyd",
        "kzt",
        "lak",
        "lbp",
        "lkr",
        "lrd",
        "lsl",
        "mad",
        "mdl",
        "mga",
        "mkd",
        "mmk",
        "mnt",
        "mop",
        "mur",
        "mvr",
        "mwk",
        "mxn",
        "myr",
        "mzn",
        "nad",
        "ngn",
        "nio",
        "nok",
        "npr",
        "nzd",
        "omr",
        "pab",
        "pen",
        "pgk",
        "php",
        "pkr",
        "pln",
        "pyg",
        "qar",
        "ron",
        "rsd",
        "rub",
        "rwf",
        "sar",
        "sbd",
        "scr",
        "sek",
        "sgd",
        "shp",
        "sle",
        "sos",
        "srd",
        "std",
        "szl",
        "thb",
        "tjs",
        "tnd",
        "top",
        "try",
        "ttd",
        "twd",
        "tzs",
        "uah",
        "ugx",
        "usd",
        "uyu",
        "uzs",
        "vnd",
        "vuv",
        "wst",
        "xaf",
        "xcd",
        "xcg",
        "xof",
        "xpf",
        "yer",
        "zar",
        "zmw",
    ]
)

#: Largest amount Stripe accepts in one charge (eight digits of minor units).
MAX_AMOUNT = 99_999_999

#: Currencies whose charges may have more digits (Stripe: up to twelve for IDR).
MAX_CHARGE: dict[str, int] = {"idr": 999_999_999_999}

#: Stripe's documented minimum charge per currency, in minor units. Charges in other currencies
#: are converted by Stripe to the settlement currency and checked there, which only Stripe can do.
MIN_CHARGE: dict[str, int] = {
    "usd": 50,
    "aed": 200,
    "aud": 50,
    "bgn": 100,
    "brl": 50,
    "cad": 50,
    "chf": 50,
    "czk": 1500,
    "dkk": 250,
    "eur": 50,
    "gbp": 30,
    "hkd": 400,
    "huf": 17500,
    "inr": 50,
    "jpy": 50,
    "mxn": 1000,
    "myr": 200,
    "nok": 300,
    "nzd": 50,
    "pln": 200,
    "ron": 200,
    "sek": 300,
    "sgd": 50,
    "thb": 1000,
}

#: Three-decimal currencies: for card payments Stripe needs the last digit to be 0.
THREE_DECIMAL: frozenset[str] = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])


def normalize_currency(code: str) -> str | None:
    """The canonical lower-case code, or ``None`` when it is not a currency we accept."""
    lowered = code.strip().lower()
    return lowered if lowered in CURRENCIES else None


def max_amount(currency: str) -> int:
    """The largest amount Stripe charges in ``currency`` (a canonical code)."""
    return MAX_CHARGE.get(currency, MAX_AMOUNT)


def min_amount(currency: str) -> int:
    """The least amount Stripe charges in ``currency`` (a canonical code; see ``MIN_CHARGE``)."""
    return MIN_CHARGE.get(currency, 1)


def charge_problem(amount: int, currency: str) -> str | None:
    """Why Stripe would refuse to charge ``amount`` minor units of ``currency`` (a canonical
    code), or ``None`` when the amount is within Stripe's limits for that currency."""
    least = min_amount(currency)
    most = max_amount(currency)
    if not least <= amount <= most:
        return f"amount must be between {least} and {most} for {currency}"
    if currency in THREE_DECIMAL and amount % 10:
        return f"amount in {currency} must end in 0 (three-decimal currency)"
    return None
