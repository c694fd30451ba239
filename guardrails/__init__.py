"""The lab's CrossGuard policy pack: rules.py (what is a violation, pure), pack.py (the pulumi-policy
wrappers), __main__.py (what `pulumi up --policy-pack guardrails` runs)."""
