//! Image I/O: PNG <-> tensors, resizing as the paper did.
