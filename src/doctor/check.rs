//! One line of the doctor's report: a check's name, what it concluded, what it found and the fix.

use serde::Serialize;

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but something is likely to bite: the fix says what to look at.
    Warn,
    /// Discovery cannot work as things are: `peerd doctor` exits 1.
    Fail,
    /// Could not be found out (a file unreadable, too short a window): the fix says how.
    Unknown,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// A command or flag that fixes or tells more; `None` only when the status is `Ok`.
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn ok(check: &'static str, detail: String) -> Check {
        Check {
            check,
            status: Status::Ok,
            detail,
            fix: None,
        }
    }

    pub(crate) fn not_ok(
        check: &'static str,
        status: Status,
        detail: String,
        fix: String,
    ) -> Check {
        Check {
            check,
            status,
            detail,
            fix: Some(fix),
        }
    }
}

/// `1 node`, `2 nodes`.
pub(crate) fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}
