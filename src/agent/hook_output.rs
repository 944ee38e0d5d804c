//! What a hook writes on its stdout and stderr: read as it writes, so it never blocks on a full
//! pipe, its first lines logged at debug and the rest only counted, so a chatty hook costs the
//! agent neither memory nor log. It does not decide when the reading stops: the hook's run does.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Lines of each stream logged per run. Enough for what a failing program says (an error and a
/// few lines of context, a shell's `set -x` trace of a short script), while a run costs at most
/// 2 x 10 debug lines of [`LINE_BYTES`], about 10 KB, however much it writes.
pub const LINES: usize = 10;
/// The longest line logged; the rest of a longer line is counted as dropped. A hook that writes
/// megabytes without a newline is one line, and must not be one log line of megabytes.
pub const LINE_BYTES: usize = 512;
/// One read of a pipe. The agent runs on one thread, and tokio makes a task yield after 128
/// reads: a hook that writes as fast as it can holds that thread for 2 MiB of reading at a
/// time, not for all it writes.
const READ_BYTES: usize = 16 * 1024;

/// One stream of one run: its first [`LINES`] lines, each passed on as it ends, and a count of
/// the rest.
#[derive(Debug, Default)]
pub struct Capture {
    /// Lines passed on so far.
    logged: usize,
    /// The line being read, up to [`LINE_BYTES`].
    line: Vec<u8>,
    /// Whether bytes were read since the last newline: a line begun, to be counted at the end.
    open: bool,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl Capture {
    /// Takes the next bytes of the stream; `log` gets each of the first [`LINES`] lines as it
    /// ends, without its newline.
    pub fn feed(&mut self, mut chunk: &[u8], log: &mut impl FnMut(&str)) {
        while self.logged < LINES && !chunk.is_empty() {
            match chunk.iter().position(|&byte| byte == b'\n') {
                Some(end) => {
                    self.take(&chunk[..end]);
                    self.end_line(log);
                    chunk = &chunk[end + 1..];
                }
                None => {
                    self.take(chunk);
                    return;
                }
            }
        }
        if chunk.is_empty() {
            return;
        }
        // Past the lines logged: only counted, at the cost of one scan.
        self.dropped_bytes += chunk.len() as u64;
        self.dropped_lines += chunk.iter().filter(|&&byte| byte == b'\n').count() as u64;
        self.open = chunk.last() != Some(&b'\n');
    }

    /// The stream ended, or is read no more: a last line without its newline is logged, if
    /// there is room for it, or counted.
    pub fn finish(&mut self, log: &mut impl FnMut(&str)) {
        if !self.open {
            return;
        }
        if self.logged < LINES {
            self.end_line(log);
        } else {
            self.dropped_lines += 1;
            self.open = false;
        }
    }

    /// The lines not logged (a line cut short counts in bytes only) and the bytes not logged.
    pub fn dropped(&self) -> (u64, u64) {
        (self.dropped_lines, self.dropped_bytes)
    }

    fn take(&mut self, bytes: &[u8]) {
        let room = LINE_BYTES - self.line.len();
        let kept = bytes.len().min(room);
        self.line.extend_from_slice(&bytes[..kept]);
        self.dropped_bytes += (bytes.len() - kept) as u64;
        self.open |= !bytes.is_empty();
    }

    fn end_line(&mut self, log: &mut impl FnMut(&str)) {
        log(&String::from_utf8_lossy(&self.line));
        self.line.clear();
        self.logged += 1;
        self.open = false;
    }
}

/// Reads `stream` to its end into `capture`, passing its first lines to `log`. A read error
/// ends it as the end of the stream would. It leaves a last unfinished line to
/// [`Capture::finish`], which the caller calls whether this ran to the end or was cut short.
pub async fn drain(
    stream: Option<impl AsyncRead + Unpin>,
    capture: &mut Capture,
    mut log: impl FnMut(&str),
) {
    let Some(mut stream) = stream else {
        return;
    };
    let mut buffer = vec![0; READ_BYTES];
    while let Ok(read @ 1..) = stream.read(&mut buffer).await {
        capture.feed(&buffer[..read], &mut log);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` and finishes; returns the lines logged and what was dropped.
    fn capture(chunks: &[&[u8]]) -> (Vec<String>, (u64, u64)) {
        let mut capture = Capture::default();
        let mut lines = Vec::new();
        let mut log = |line: &str| lines.push(line.to_owned());
        for chunk in chunks {
            capture.feed(chunk, &mut log);
        }
        capture.finish(&mut log);
        (lines, capture.dropped())
    }

    #[test]
    fn short_output_is_logged_line_by_line_whatever_the_chunks() {
        let (lines, dropped) = capture(&[b"one\ntw", b"o\n", b"\nthree"]);
        assert_eq!(lines, ["one", "two", "", "three"]);
        assert_eq!(dropped, (0, 0));
    }

    #[test]
    fn past_the_first_lines_output_is_only_counted() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let (lines, dropped) = capture(&[text.as_bytes()]);
        assert_eq!(lines.len(), LINES);
        assert_eq!(lines[LINES - 1], format!("line {}", LINES - 1));
        let logged: usize = lines.iter().map(|line| line.len() + 1).sum();
        assert_eq!(dropped, (100 - LINES as u64, (text.len() - logged) as u64));
    }

    #[test]
    fn a_last_line_without_a_newline_is_logged_or_counted() {
        let (lines, _) = capture(&[b"no newline"]);
        assert_eq!(lines, ["no newline"]);
        let text = "x\n".repeat(LINES) + "one more";
        let (lines, dropped) = capture(&[text.as_bytes()]);
        assert_eq!(lines.len(), LINES);
        assert_eq!(dropped, (1, 8));
    }

    #[test]
    fn a_long_line_is_cut_and_its_rest_counted_in_bytes() {
        let long = vec![b'a'; 3 * LINE_BYTES];
        let (lines, dropped) = capture(&[
            &long[..LINE_BYTES + 7],
            &long[LINE_BYTES + 7..],
            b"\nnext\n",
        ]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), LINE_BYTES);
        assert_eq!(lines[1], "next");
        assert_eq!(dropped, (0, 2 * LINE_BYTES as u64));
    }

    #[test]
    fn invalid_utf8_is_logged_with_replacement_characters() {
        let (lines, _) = capture(&[b"caf\xe9\n"]);
        assert_eq!(lines, ["caf\u{fffd}"]);
    }

    #[tokio::test]
    async fn a_stream_of_megabytes_is_read_to_its_end_and_counted() {
        let (mut writer, reader) = tokio::io::duplex(READ_BYTES);
        let line = "x".repeat(99) + "\n";
        let writing = async move {
            use tokio::io::AsyncWriteExt;
            for _ in 0..100_000 {
                writer.write_all(line.as_bytes()).await.expect("write");
            }
        };
        let mut capture = Capture::default();
        let mut logged = 0;
        let draining = drain(Some(reader), &mut capture, |_| logged += 1);
        tokio::join!(writing, draining);
        capture.finish(&mut |_| logged += 1);
        assert_eq!(logged, LINES);
        assert_eq!(
            capture.dropped(),
            (100_000 - LINES as u64, 100 * (100_000 - LINES as u64))
        );
    }
}
