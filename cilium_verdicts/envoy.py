"""Envoy type URLs the evaluator reads in CiliumEnvoyConfig resources (and the packs write)."""
LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
