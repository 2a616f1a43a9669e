"""Training one run: the accumulating step, checkpoints, the fit loop, the linear reference."""
