//! onecycle (not built yet).
