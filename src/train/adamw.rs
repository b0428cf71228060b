//! adamw (not built yet).
