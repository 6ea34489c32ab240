"""Thin resolvers: unpack input, call one service, convert the result to a GraphQL type."""
