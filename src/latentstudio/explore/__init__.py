"""Exploring a trained model: sampling, interpolation, concept vectors, projection, latent maps, CPPN renders."""
