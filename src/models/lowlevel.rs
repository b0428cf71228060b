//! Low-level model: fMRI voxels -> SD-VAE latent (the paper's `Voxel2StableDiffusionModel`).
