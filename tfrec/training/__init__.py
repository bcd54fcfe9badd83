"""Training: the canonical trainer, its workdir, callbacks and distribution strategy."""
