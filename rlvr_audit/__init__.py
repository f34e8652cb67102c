"""rlvr-audit."""
