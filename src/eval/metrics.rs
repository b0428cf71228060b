//! Reconstruction metrics: latent L1, PixCorr, SSIM, 2-way identification, CLIP cosine.
