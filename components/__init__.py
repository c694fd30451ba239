"""Thin Pulumi ComponentResources; each turns something built by ``model`` into resources."""
