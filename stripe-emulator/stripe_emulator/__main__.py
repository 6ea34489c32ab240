"""``stripe-emulator`` (or ``python -m stripe_emulator``): serve a fresh emulator until
interrupted, for any Stripe client to point its API base at."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from stripe_emulator.server import run_standalone


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stripe-emulator",
        description="An offline, stateful emulator of the Stripe HTTP API. Point a Stripe "
        "client's API base at http://HOST:PORT with any sk_test_... key.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=12111, help="port to bind (default 12111)")
    parser.add_argument(
        "--public-url",
        default=None,
        help="the address clients reach it at, for hosted-page links (default http://HOST:PORT)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    run_standalone(args.host, args.port, args.public_url)


if __name__ == "__main__":
    main()
