"""The HTTP edge: /graphql per GraphQL-over-HTTP, body limit, persisted queries, rate limit."""
