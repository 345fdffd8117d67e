"""Access decisions: the action vocabulary, the store-backed facts, the engine and its log.

Flow: check request → `engine.Engine.check` → `facts.FactIndex` (store) → Decision → decision log.
"""
