"""Persistence: SQLAlchemy 2 models, engine set-up and Alembic migrations.

May import `authz.base` only.
"""
