"""Offline Cilium verdict evaluator and its picture (pure: no Pulumi, no cluster)."""
