"""What every layer may use: the clock, errors, ids, paging, settings, email addresses and
the verified caller (`principals`).

Imports nothing else of `authz`.
"""
