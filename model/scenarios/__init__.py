"""Scenario packs: one pure module per seed (see base.py for the module contract)."""
