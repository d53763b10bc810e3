"""Identity: who a caller is (users, passwords, partner tokens).

Imports only `db/` and `audit/`; the HTTP edge (JWT, routes) lives in `api/auth/`.
"""
