//! checkpoint (not built yet).
