"""Sandboxes: where the model's commands run. One fresh container per task."""
