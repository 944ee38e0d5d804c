//! Shell completions and the man page, both generated from the clap definitions that parse the
//! command line, so they cannot drift from it. No agent runs here.

use std::process::Command;

use crate::support::{PEERD, must};

/// What bash completes for the words `line` with the cursor on the last one, with peerd's
/// completion script loaded from `peerd completions bash`.
fn bash_completes(line: &[&str]) -> Vec<String> {
    let words = line.join(" ");
    let current = line.len() - 1;
    // `_peerd` is called as bash calls a completion function: command, current word, previous.
    let script = format!(
        "source <({PEERD} completions bash) && COMP_WORDS=({words}) && COMP_CWORD={current} \
         && _peerd peerd \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\" \
         && printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    must("bash", &["-c", &script])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_flags() {
    assert_eq!(bash_completes(&["peerd", "ag"]), ["agent"]);
    assert_eq!(
        bash_completes(&["peerd", "agent", "--secret-f"]),
        ["--secret-file"]
    );
}

#[test]
fn completions_are_printed_for_zsh_and_fish_too() {
    for (shell, marker) in [("zsh", "#compdef peerd"), ("fish", "complete -c peerd")] {
        let script = must(PEERD, &["completions", shell]);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("secret-file"), "{shell}: {script}");
    }
}

#[test]
fn the_man_pages_are_roff_with_every_flag() {
    let page = must(PEERD, &["man"]);
    // clap_mangen opens with two string definitions, then the title header.
    let header = page
        .lines()
        .find(|line| !line.starts_with(".ie") && !line.starts_with(".el"))
        .unwrap_or_default();
    assert!(header.starts_with(".TH peerd 1"), "{header:?}");
    let agent = must(PEERD, &["man", "agent"]);
    assert!(agent.contains(".TH peerd-agent 1"), "{agent}");
    assert!(agent.contains("secret\\-file"), "{agent}");
    let unknown = Command::new(PEERD)
        .args(["man", "nope"])
        .output()
        .expect("run peerd");
    assert_eq!(unknown.status.code(), Some(1));
}

#[test]
fn a_reader_that_goes_away_ends_them_quietly() {
    // `peerd man | head`, with the reader gone before the first byte: deterministic, whatever
    // the pipe's buffer would have held.
    for args in [&["man"][..], &["man", "agent"], &["completions", "bash"]] {
        let (read, write) = nix::unistd::pipe().expect("a pipe");
        drop(read);
        let out = Command::new(PEERD)
            .args(args)
            .stdout(write)
            .output()
            .expect("run peerd");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "peerd {args:?}: {err}");
        assert!(err.is_empty(), "peerd {args:?}: {err}");
    }
}
