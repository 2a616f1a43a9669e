"""Where a run executes: the Keras backend, the machine, memory and threads."""
