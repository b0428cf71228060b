//! Large f32 buffers backed by transparent huge pages (2 MiB): fewer TLB misses when a kernel
//! streams through them, and 512x fewer page faults on the first touch of a fresh one (a fresh
//! 324 MB gradient costs about 80,000 faults in 4 KiB pages). Linux only; elsewhere, and when
//! the OS declines the advice, they are plain buffers.
//!
//! Also the uninitialised buffers a kernel writes whole ([`filled_buffer`], [`written_buffer`]):
//! no zero-fill first; debug builds fill them with NaN so a value a kernel misses shows in tests.

use std::mem::MaybeUninit;

/// Buffers at least this large (in values) are advised to use huge pages.
pub(crate) const HUGE_MIN: usize = 1 << 20;

/// A zero-filled buffer of `n` values (huge pages when large).
pub(crate) fn zeroed_buffer(n: usize) -> Vec<f32> {
    if n < HUGE_MIN {
        return vec![0.0; n];
    }
    let mut buf = Vec::<f32>::with_capacity(n);
    advise_huge_pages(buf.as_mut_ptr(), n);
    buf.resize(n, 0.0);
    buf
}

/// A buffer of `n` values that `fill` writes completely through the pointer it gets (huge
/// pages when large), without zeroing it first.
///
/// # Safety
/// `fill` must write every one of the `n` values and nothing outside them.
pub(crate) unsafe fn filled_buffer(n: usize, fill: impl FnOnce(*mut f32)) -> Vec<f32> {
    let mut buf = Vec::<f32>::with_capacity(n);
    if n >= HUGE_MIN {
        advise_huge_pages(buf.as_mut_ptr(), n);
    }
    // Debug builds (the tests) start from NaN, so a value `fill` forgets shows up in the result
    // instead of whatever the allocator's reused memory held.
    #[cfg(debug_assertions)]
    buf.spare_capacity_mut()[..n].fill(MaybeUninit::new(f32::NAN));
    fill(buf.as_mut_ptr());
    // SAFETY: the capacity is n and the caller guarantees `fill` initialised all n values.
    unsafe { buf.set_len(n) };
    buf
}

/// [`filled_buffer`] with the uninitialised values handed to `fill` as a slice, for kernels that
/// write them chunk by chunk (in parallel).
///
/// # Safety
/// `fill` must write every one of the `n` values.
pub(crate) unsafe fn written_buffer(
    n: usize,
    fill: impl FnOnce(&mut [MaybeUninit<f32>]),
) -> Vec<f32> {
    // SAFETY: the pointer heads a capacity of n values; the caller guarantees all are written.
    unsafe { filled_buffer(n, |ptr| fill(std::slice::from_raw_parts_mut(ptr.cast(), n))) }
}

/// `madvise(MADV_HUGEPAGE)` on the whole 2 MiB pages inside `[ptr, ptr + n)`.
fn advise_huge_pages(ptr: *mut f32, n: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = (ptr as usize).div_ceil(HUGE) * HUGE;
        let end = (ptr as usize + n * 4) / HUGE * HUGE;
        if end > start {
            // SAFETY: the range lies inside an allocation we own; madvise only changes paging
            // policy and its failure is harmless (ignored).
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, n);
}
