"""Refusing abuse cheaply: query limits, rate limits, body size, headers, CORS, introspection.

Kept free of imports so that `api.settings` can import `api.hardening.settings` without pulling
in Starlette middleware or the schema.
"""
