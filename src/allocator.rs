//! Allocator settings for the binary's global allocator (mimalloc, see `src/main.rs`).
//!
//! burn frees and re-allocates the same large tensors on every training step. By default
//! mimalloc hands freed memory back to the OS after 1 s (mimalloc v3, which libmimalloc-sys
//! builds by default; 10 ms in v2), shorter than a paper-size step, so each re-allocation faults
//! in fresh pages that the kernel first clears: about 20% of a paper-size training step on the
//! CPU went to `clear_page_erms`. Keeping freed memory for reuse took `bench train` from 3.27 to
//! 2.72 s/step (peak RSS 2.4 -> 2.9 GB; PyTorch's is 3.5 GB).

use std::ffi::c_long;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (15 in both the v2 and v3 headers;
/// libmimalloc-sys does not export the constant). Milliseconds before freed memory is purged;
/// -1 never purges.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keep freed memory mapped for reuse instead of returning it to the OS (process-wide; call
/// once at start-up, before heavy allocation).
pub fn keep_freed_memory() {
    // SAFETY: sets an integer option of the linked mimalloc; valid at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1 as c_long) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Option 15 is the purge delay: it has the purge delay's default (1000 ms in mimalloc v3,
    /// 10 ms in v2) until set, and reads back -1 after. A shifted enum would name another
    /// option, with another default.
    #[test]
    fn option_15_is_the_purge_delay() {
        // SAFETY: reads and sets integer options of the linked mimalloc.
        unsafe {
            let default = libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY);
            assert!(
                default == 1000 || default == 10,
                "option 15 reads {default}, not the purge delay's default (1000 ms in v3, 10 in v2)"
            );
            keep_freed_memory();
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), -1);
        }
    }
}
