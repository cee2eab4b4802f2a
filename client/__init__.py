"""The CLI client: `lain-console` verbs that operate a console over its public GraphQL API.

It speaks only HTTP and websockets (graphql-transport-ws) to a console, local or remote, and
imports nothing of the server's.
"""
