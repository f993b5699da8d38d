"""Training (needs the ``train`` extra: torch, albumentations). Inference never imports this."""
