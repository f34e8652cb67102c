"""Simulations: the GRPO clipping-bias simulator."""
