"""Pure model of the lab: settings, rule sets, scripts, manifests, probes. No Pulumi import here."""
