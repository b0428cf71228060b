//! metrics (not built yet).
