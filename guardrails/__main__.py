"""Entry point of the policy pack: `pulumi preview|up --policy-pack guardrails` runs this file (the CLI's
Python analyzer shim runs the pack directory with runpy, so the directory itself is on sys.path, not
the project root: add the root for `model` and `policy`)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack  # noqa: E402

from guardrails.pack import PACK_NAME, policies  # noqa: E402

PolicyPack(name=PACK_NAME, policies=policies(),
           description="cilium-egress-lab guardrails: IMDSv2, encryption, ingress, secrets, cost ceiling")
