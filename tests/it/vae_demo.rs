//! The committed demo VAE (weights/demo/vae, trained by `brainscope train-vae`) reconstructs
//! held-out demo images (test split of `brainscope demo --seed 1`, never seen in training).

use std::path::{Path, PathBuf};

use brainscope::models::vae::{load_vae, train::psnr};

/// Held-out reconstruction floor in dB. The committed 400-step weights measure 17.87 dB on these 8
/// images (16.3 dB over 32 held-out images, see weights/README.md); random weights give far less.
const PSNR_FLOOR_DB: f64 = 16.0;

#[test]
fn demo_vae_reconstructs_heldout_images() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let device = brainscope::backend::default_device();
    let vae = load_vae(&root.join("weights/demo/vae"), &device).expect("committed demo VAE");
    let mut images: Vec<PathBuf> = std::fs::read_dir(root.join("tests/fixtures/vae/demo_heldout"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    images.sort();
    assert!(images.len() >= 4);
    let size = vae.config.sample_size as u32;
    let x = brainscope::imageio::load_batch(&images, size, size, &device).unwrap(); // [8, 3, 64, 64]
    let z = vae.model.encode(x.clone()).mode();
    assert_eq!(z.dims(), [images.len(), 4, 16, 16]);
    let db = psnr(vae.model.decode(z), x);
    println!("held-out PSNR {db:.2} dB over {} images", images.len());
    assert!(db >= PSNR_FLOOR_DB, "demo VAE held-out PSNR {db:.2} dB < {PSNR_FLOOR_DB} dB");
}
