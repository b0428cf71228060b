//! trainer (not built yet).
