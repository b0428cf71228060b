//! Process facts a run record needs: is a pid alive, when did it start (so a recycled pid is not
//! mistaken for the trainer), the host name, and wall-clock milliseconds.

use std::path::Path;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Start time of `pid` in clock ticks since boot (`/proc/PID/stat` field 22); `None` when the
/// process does not exist (or /proc is unavailable).
pub fn pid_start_time(pid: u32) -> Option<u64> {
    let text =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    parse_stat_start_time(&text)
}

/// Field 22 (`starttime`) of a `/proc/PID/stat` line. The command name (field 2) is wrapped in
/// parentheses and may itself contain spaces and parentheses, so fields are counted after the
/// last `)`.
pub fn parse_stat_start_time(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields after the name start with field 3 (state); starttime is field 22 -> index 19.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// State letter of `pid` (`R`, `S`, `Z`, ...) from `/proc/PID/stat`.
fn pid_state(pid: u32) -> Option<char> {
    let text =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

/// Whether the process `pid` is alive and, when `start` is given, is the same process that was
/// recorded (its start time matches). Zombies count as dead.
pub fn pid_matches(pid: u32, start: Option<u64>) -> bool {
    if pid == 0 {
        return false;
    }
    match pid_start_time(pid) {
        Some(actual) => {
            if pid_state(pid) == Some('Z') {
                return false;
            }
            start.is_none_or(|s| s == actual)
        }
        None => {
            // No /proc entry: fall back to kill(pid, 0) (other Unixes); without a start time to
            // compare, a live pid is the best evidence available.
            // SAFETY: signal 0 only checks for existence and permission.
            let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
            rc == 0 && !Path::new("/proc/self").exists()
        }
    }
}

/// This machine's host name (empty when it cannot be read).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates when it fits.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_start_time_skips_names_with_spaces_and_parens() {
        let line = "1234 (we ird) (name)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat_start_time(line), Some(987654));
    }

    #[test]
    fn own_process_is_alive_with_matching_start() {
        let pid = std::process::id();
        let start = pid_start_time(pid).expect("own /proc/PID/stat readable");
        assert!(pid_matches(pid, Some(start)));
        assert!(
            !pid_matches(pid, Some(start + 1)),
            "a different start time is a different process"
        );
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(!hostname().is_empty());
    }
}
