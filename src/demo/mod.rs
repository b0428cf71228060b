//! The embedded demo dataset: procedural images and a simulated brain, in the Algonauts layout.
