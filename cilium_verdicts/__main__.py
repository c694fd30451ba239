"""``python -m cilium_verdicts`` is the ``cilium-verdicts`` command."""
import sys

from .cli import main

sys.exit(main(prog="python -m cilium_verdicts"))
