//! Skipping a test that finds at run time that it cannot run here: said loudly, recorded for
//! `bin/test`'s summary, and turned into a failure where CI says the test must run.

use std::io::Write;

/// Where `bin/test` collects skips: one line per skipped test, `name<TAB>reason`.
pub const SKIP_LOG: &str = "PEERD_SKIP_LOG";

/// Reports that the running test cannot run because of `why` and returns `None`, for the test
/// to return early. Panics instead when `require_var` is `1` (set by `.ci/run` where the
/// precondition always holds, so a skip would hide a broken test).
pub fn skip<T>(why: &str, require_var: &str) -> Option<T> {
    if std::env::var_os(require_var).is_some_and(|v| v == "1") {
        panic!("{why}, and {require_var}=1 forbids skipping");
    }
    // libtest names each test's thread after the test.
    let test = std::thread::current()
        .name()
        .unwrap_or("an unnamed test")
        .to_owned();
    // Written to the process's stderr, not through eprintln!, which libtest captures and shows
    // only for failing tests.
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {test}: {why} ***");
    if let Some(path) = std::env::var_os(SKIP_LOG) {
        // One short write with O_APPEND: tests running in parallel cannot interleave lines.
        let line = format!("{test}\t{why}\n");
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut log| log.write_all(line.as_bytes()));
        if let Err(err) = appended {
            panic!("cannot record the skip in {}: {err}", path.display());
        }
    }
    None
}
