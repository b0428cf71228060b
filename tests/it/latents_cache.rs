//! The latent cache: contents equal a direct encode, reuse when up to date, resume from a partial
//! run, sampling is seeded per image, bad input is rejected.

use std::path::{Path, PathBuf};

use brainscope::latents::{LatentCache, LatentJob, LatentMode, ensure_latent_cache, sidecar_path};
use brainscope::models::vae::load_vae;
use image::{Rgb, RgbImage};

fn fixture_vae() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vae/tiny_lpb1")
}

/// Five small gradient images (40x40, resized to the VAE's 32x32).
fn images(dir: &Path) -> Vec<PathBuf> {
    (0..5)
        .map(|i| {
            let img = RgbImage::from_fn(40, 40, |x, y| {
                Rgb([(x * 6) as u8, (y * 6) as u8, (i * 50) as u8])
            });
            let p = dir.join(format!("{i}.png"));
            img.save(&p).unwrap();
            p
        })
        .collect()
}

fn job(dir: &Path, imgs: Vec<PathBuf>, mode: LatentMode) -> LatentJob {
    LatentJob {
        dataset: dir.into(),
        n_train: 3,
        images: imgs,
        vae: fixture_vae(),
        out: dir.join("latents/cache.npy"),
        batch: 2,
        mode,
        image_size: None,
        progress: false,
    }
}

#[test]
fn cache_matches_direct_encode_and_is_reused() {
    let device = brainscope::backend::default_device();
    let tmp = tempfile::tempdir().unwrap();
    let imgs = images(tmp.path());
    let j = job(tmp.path(), imgs.clone(), LatentMode::Mode);
    let built = ensure_latent_cache(&j, &device).unwrap();
    assert_eq!(built.rebuilt_because, None, "a first build replaces nothing");
    let path = built.path;
    let cache = LatentCache::open(&path).unwrap();
    assert_eq!(cache.len(), 5);
    assert_eq!(cache.shape(), [4, 16, 16]);
    let meta = cache.meta().expect("sidecar");
    assert_eq!((meta.image_count, meta.n_train, meta.image_size), (5, 3, 32));

    let vae = load_vae(&fixture_vae(), &device).unwrap();
    let x = brainscope::imageio::load_batch(&imgs[3..5], 32, 32, &device).unwrap();
    let direct = brainscope::latents::encode_scaled(&vae, x, None);
    let direct: Vec<f32> = direct.into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
    let cached = cache.rows(&[3, 4]).unwrap();
    let max = cached
        .iter()
        .zip(&direct)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1e-2))
        .fold(0f32, f32::max);
    assert!(max < 2e-3, "f16 cache differs from direct encode (rel {max})");

    // Up to date: reused without rewriting.
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert_eq!(ensure_latent_cache(&j, &device).unwrap().rebuilt_because, None);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), before);
    // A changed image list makes it stale, and says so.
    let j2 = job(tmp.path(), imgs[..4].to_vec(), LatentMode::Mode);
    let built2 = ensure_latent_cache(&j2, &device).unwrap();
    let reason = built2.rebuilt_because.expect("a rebuild says why");
    assert!(reason.contains("image count 5 -> 4") && reason.contains("--restart"), "{reason}");
    assert_eq!(LatentCache::open(&built2.path).unwrap().len(), 4);
    assert!(cache.rows(&[5]).is_err());
}

#[test]
fn interrupted_run_resumes_from_the_marker() {
    let device = brainscope::backend::default_device();
    let tmp = tempfile::tempdir().unwrap();
    let imgs = images(tmp.path());
    let j = job(tmp.path(), imgs, LatentMode::Mode);
    // A full run gives the reference; turn it into a "partial" run with 2 rows done and rows 0..2
    // overwritten by a marker value, which a resumed run must keep.
    let path = ensure_latent_cache(&j, &device).unwrap().path;
    let reference = LatentCache::open(&path).unwrap().rows(&[0, 1, 2, 3, 4]).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sidecar_path(&path)).unwrap()).unwrap();
    meta["rows_done"] = 2.into();
    let mut bytes = std::fs::read(&path).unwrap();
    let row_bytes = 4 * 16 * 16 * 2;
    let data_start = bytes.len() - 5 * row_bytes;
    let seven = half::f16::from_f32(7.0).to_le_bytes();
    for b in bytes[data_start..data_start + 2 * row_bytes].chunks_exact_mut(2) {
        b.copy_from_slice(&seven);
    }
    // Rows 2.. zeroed: they must be recomputed.
    for b in &mut bytes[data_start + 2 * row_bytes..] {
        *b = 0;
    }
    std::fs::write(tmp.path().join("latents/cache.npy.partial"), &bytes).unwrap();
    std::fs::write(tmp.path().join("latents/cache.npy.partial.json"), meta.to_string()).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(sidecar_path(&path)).unwrap();

    let path = ensure_latent_cache(&j, &device).unwrap().path;
    let resumed = LatentCache::open(&path).unwrap().rows(&[0, 1, 2, 3, 4]).unwrap();
    assert!(
        resumed.slice(ndarray::s![0..2, .., .., ..]).iter().all(|v| *v == 7.0),
        "resume recomputed done rows"
    );
    assert_eq!(
        resumed.slice(ndarray::s![2.., .., .., ..]),
        reference.slice(ndarray::s![2.., .., .., ..])
    );
    assert!(!tmp.path().join("latents/cache.npy.partial.json").exists());
}

#[test]
fn samples_are_seeded_per_image_independent_of_batch() {
    let device = brainscope::backend::default_device();
    let tmp = tempfile::tempdir().unwrap();
    let imgs = images(tmp.path());
    let mut a = job(tmp.path(), imgs.clone(), LatentMode::Sample { seed: 3 });
    a.out = tmp.path().join("a.npy");
    let mut b = a.clone();
    b.out = tmp.path().join("b.npy");
    b.batch = 3;
    let mut m = a.clone();
    m.out = tmp.path().join("m.npy");
    m.mode = LatentMode::Mode;
    let rows = |j: &LatentJob| {
        LatentCache::open(&ensure_latent_cache(j, &device).unwrap().path)
            .unwrap()
            .rows(&[0, 1, 2, 3, 4])
            .unwrap()
    };
    let (ra, rb, rm) = (rows(&a), rows(&b), rows(&m));
    assert_eq!(ra, rb, "same seed, different batch size: same samples");
    assert_ne!(ra, rm, "samples differ from the mode");
}

#[test]
fn unreadable_image_is_an_error_naming_it() {
    let device = brainscope::backend::default_device();
    let tmp = tempfile::tempdir().unwrap();
    let mut imgs = images(tmp.path());
    let bad = tmp.path().join("bad.png");
    std::fs::write(&bad, b"not a png").unwrap();
    imgs.push(bad);
    let err = ensure_latent_cache(&job(tmp.path(), imgs, LatentMode::Mode), &device).unwrap_err();
    assert!(err.to_string().contains("bad.png"), "{err}");
    assert!(!tmp.path().join("latents/cache.npy").exists());
}

/// Set `path`'s mtime back to `mtime` (what `cp -p` or `rsync -t` of another file does).
fn set_mtime(path: &Path, mtime: std::time::SystemTime) {
    std::fs::File::options().write(true).open(path).unwrap().set_modified(mtime).unwrap();
}

#[test]
fn content_changes_are_noticed_whatever_the_size_and_mtime_and_named() {
    let device = brainscope::backend::default_device();
    let tmp = tempfile::tempdir().unwrap();
    let imgs = images(tmp.path());
    // Every image padded to one size (PNG decoders stop at IEND), so a replacement can have
    // exactly the size of the original.
    let size = 64 * 1024;
    let pad_to = |path: &Path, mut bytes: Vec<u8>| {
        assert!(bytes.len() <= size);
        bytes.resize(size, 0);
        std::fs::write(path, bytes).unwrap();
    };
    for p in &imgs {
        pad_to(p, std::fs::read(p).unwrap());
    }
    // A private copy of the fixture VAE, to change its weights.
    let vae = tmp.path().join("vae");
    std::fs::create_dir_all(&vae).unwrap();
    for e in std::fs::read_dir(fixture_vae()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), vae.join(e.file_name())).unwrap();
    }
    let mut j = job(tmp.path(), imgs.clone(), LatentMode::Mode);
    j.vae = vae.clone();
    let first = ensure_latent_cache(&j, &device).unwrap();
    let rows = |p: &Path| LatentCache::open(p).unwrap().rows(&[0, 1, 2, 3, 4]).unwrap();
    let reference = rows(&first.path);

    // Image 1 replaced by another image of the same byte size, mtime restored.
    let mtime = std::fs::metadata(&imgs[1]).unwrap().modified().unwrap();
    let other = tmp.path().join("other.png");
    RgbImage::from_fn(40, 40, |x, y| Rgb([(y * 6) as u8, 200, (x * 6) as u8]))
        .save(&other)
        .unwrap();
    pad_to(&imgs[1], std::fs::read(&other).unwrap());
    set_mtime(&imgs[1], mtime);
    assert_eq!(std::fs::metadata(&imgs[1]).unwrap().len(), size as u64);
    let built = ensure_latent_cache(&j, &device).unwrap();
    let reason = built.rebuilt_because.expect("the image change is noticed");
    assert!(reason.contains("the images changed") && !reason.contains("VAE"), "{reason}");
    let after = rows(&built.path);
    assert_ne!(after, reference, "row 1 re-encoded");

    // The VAE's weights changed in place (same size, same mtime): one byte of a float flipped.
    let weights = vae.join("diffusion_pytorch_model.safetensors");
    let mtime = std::fs::metadata(&weights).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&weights).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x01;
    std::fs::write(&weights, &bytes).unwrap();
    set_mtime(&weights, mtime);
    let built = ensure_latent_cache(&j, &device).unwrap();
    let reason = built.rebuilt_because.expect("the VAE change is noticed");
    assert!(
        reason.contains("the VAE's config.json or weights") && reason.contains("vae"),
        "{reason}"
    );
    assert!(!reason.contains("the images changed"), "{reason}");
    assert_eq!(ensure_latent_cache(&j, &device).unwrap().rebuilt_because, None, "now up to date");
}
