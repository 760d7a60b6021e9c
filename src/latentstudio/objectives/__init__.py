"""Losses and penalties: adversarial losses, gradient penalty, weight clipping, KL divergence."""
