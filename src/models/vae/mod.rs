//! Stable Diffusion VAE (diffusers `AutoencoderKL`).
