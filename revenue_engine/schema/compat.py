"""Old front ends keep validating: each mutation's result union lists only the errors it can
return (``schema.errors``), and a union once listed every error type. A document written
against the old unions may spread a fragment on an error type its mutation no longer lists
(``... on PaymentDeclinedError { declineCode }`` under ``cancelSubscription``). graphql-core's
``PossibleFragmentSpreadsRule`` refuses such a spread; ``ErrorFragmentSpreads`` accepts it when
the fragment's type is an error type (it implements ``UserError``) and the spread sits on a
result union (one holding error types): the fragment never matches, as it never did when the
mutation did not return that error. Every other impossible spread is refused as before.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLUnionType,
    InlineFragmentNode,
)
from graphql.validation import PossibleFragmentSpreadsRule

#: The interface every error type of a result union implements.
ERROR_INTERFACE = "UserError"


def _is_error_type(type_: Any) -> bool:
    return isinstance(type_, GraphQLObjectType) and any(
        i.name == ERROR_INTERFACE for i in type_.interfaces
    )


def _is_result_union(type_: Any) -> bool:
    return isinstance(type_, GraphQLUnionType) and any(_is_error_type(t) for t in type_.types)


class ErrorFragmentSpreads(PossibleFragmentSpreadsRule):
    """``PossibleFragmentSpreadsRule``, but an error-type fragment on a result union is
    accepted (see the module docstring)."""

    def enter_inline_fragment(self, node: InlineFragmentNode, *args: Any) -> None:
        context = self.context
        if _is_error_type(context.get_type()) and _is_result_union(context.get_parent_type()):
            return
        super().enter_inline_fragment(node, *args)

    def enter_fragment_spread(self, node: FragmentSpreadNode, *args: Any) -> None:
        fragment_type = self.get_fragment_type(node.name.value)
        if _is_error_type(fragment_type) and _is_result_union(self.context.get_parent_type()):
            return
        super().enter_fragment_spread(node, *args)
