//! The latent cache: every image of a dataset encoded once by a VAE (f16 npy + JSON sidecar).
