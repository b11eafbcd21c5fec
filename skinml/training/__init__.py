"""Training of image classifiers: loop, checkpoints, resume, DDP and the model bundle."""
