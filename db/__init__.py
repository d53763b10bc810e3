"""Persistence: typed models, the async engine, field encryption and migrations.

Nothing here imports another Dossier package: every layer above passes sessions down.
"""
