"""Compositions: wire the components into a stack."""
