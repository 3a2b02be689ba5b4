//! Background threads at a lower CPU priority: ingest (group commit, tantivy indexing and
//! merging) must yield the CPU to reads, or a bulk load on a two-core machine multiplies search
//! latency. On Linux the nice value is per thread and a new thread inherits its creator's, so a
//! store opened from a lowered thread has every thread it and tantivy spawn lowered too.

/// Raises the calling thread's nice value to `nice` (0 leaves it alone). Best effort: a
/// platform or sandbox that refuses leaves the thread as it was, which is only slower reads.
pub fn lower_current_thread(nice: i32) {
    if nice <= 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority takes plain integers and touches no memory of ours. With
        // PRIO_PROCESS and who = 0 Linux changes the calling thread only (the nice value is a
        // per-thread attribute under NPTL, see setpriority(2) "BUGS"), which is what we want.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
        if rc != 0 {
            tracing::debug!(nice, "could not lower thread priority");
        }
    }
}
