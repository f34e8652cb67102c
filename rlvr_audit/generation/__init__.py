"""Generation stage: plan the grid of units and generate with an engine."""
