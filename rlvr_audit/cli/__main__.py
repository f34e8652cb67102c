"""``python -m rlvr_audit.cli``: the command line."""

from . import main

main()
