//! The Algonauts 2023 data layer: fMRI arrays, ROI masks and sets, images, train/val split.
pub mod roi_table;
