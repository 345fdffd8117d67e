"""Reviewing the policy files: check, explain, diff, export of live grants.

Flow: `authz policy …` / `authz grants export` → these use cases → `authz.policy` (the engine
decides every answer here; nothing in this package re-implements a rule of `model.conf`).
"""
