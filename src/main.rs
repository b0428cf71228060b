//! The `brainscope` binary: console and CLI.

/// mimalloc: burn re-allocates large tensors every step; glibc malloc costs ~3x in training.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    brainscope::allocator::keep_freed_memory();
    brainscope::cli::main()
}
