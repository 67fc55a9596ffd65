"""Training: losses, data, the training loop and evaluation of the enhancement networks."""
