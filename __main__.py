"""cilium-egress-lab: load settings, declare the lab on its platform, export its outputs. Nothing else."""
from stacks.config import read_settings
from stacks.program import main

main(read_settings)
