"""How much the fuzz suite runs: fixed example counts (fewer on the slow wire store),
derandomized for reproducible CI runs, no deadline, no shrinking unless asked.

``FUZZ_EXAMPLES=<n>`` multiplies every count for a deeper local run; ``FUZZ_SHRINK=1`` turns
shrinking on to minimise a failure (it can take minutes: up to 500 shrinks, each a request).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

from revenue_engine.settings import Settings

SCALE = max(1, int(os.environ.get("FUZZ_EXAMPLES", "1")))
SHRINK = os.environ.get("FUZZ_SHRINK") == "1"


def examples(mongomock: int, wire: int, store: Settings) -> int:
    """``mongomock`` examples on the in-memory store, ``wire`` on the wire server, scaled."""
    return (mongomock if store.uses_memory_store else wire) * SCALE


def fuzzing(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        derandomize=True,  # the same examples on every run: CI failures reproduce locally
        database=None,  # no .hypothesis/ directory in the work tree
        deadline=None,  # an example's time depends on the store and the machine
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=False,
        # Without shrinking a failing suite still fits its time; the failure names the
        # example, the problem and the engine's traceback.
        phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if SHRINK else [])],
    )
