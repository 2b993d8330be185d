"""Training: Lightning modules (supervised, S4P), losses, run folders, checkpoint evaluation."""
