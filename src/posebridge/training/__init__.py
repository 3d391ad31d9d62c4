"""Training the lifter: the loop, losses, in-memory training data and the objectives that plug into it."""
