"""Access decisions: the action vocabulary, the store-backed facts, the engine and its log.

Flow: check request → `engine.Engine.check` → `facts.FactIndex` (store) → Decision → decision log.

May import `authz.store` and `authz.base`: no token format, no use case.
"""
