//! The live web page in a real headless Chromium, inside a loopback namespace: it lists the
//! peers, a goodbye removes a row and a join adds one without a reload, it shows when it lost
//! the agent, and it is served under a strict Content-Security-Policy.
//! `PEERD_SCREENSHOT=path` saves what the browser showed.

use serde_json::Value;

use crate::support::browser::Browser;
use crate::support::cluster::Cluster;
use crate::support::lan::Lan;
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::wait_for;

const ROWS: &str =
    "return [...document.querySelectorAll('tr[data-hostname]')].map(t => t.dataset.hostname)";
const STATE: &str = "return document.getElementById('state').textContent";

fn wait_for_rows(browser: &Browser, expected: &[&str]) {
    let shown = wait_for(POLL_SLACK, || {
        let rows = browser.eval(ROWS);
        (rows == Value::from(expected)).then_some(())
    });
    assert!(
        shown.is_some(),
        "the page never showed {expected:?}: {}",
        browser.eval(ROWS)
    );
}

#[test]
fn the_page_follows_the_peers_live() {
    let Some(mut lan) = Lan::loopback(3, Timings::FAST) else {
        return;
    };
    let node1 = lan.agent("node1");
    let url = format!("http://{}/", node1.api());
    let headers = node1
        .command("curl")
        .args(["-sI", &url])
        .output()
        .expect("run curl");
    let headers = String::from_utf8_lossy(&headers.stdout).to_lowercase();
    assert!(
        headers.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{headers}"
    );
    let Some(browser) = Browser::start(node1) else {
        return;
    };
    browser.open(&url);
    wait_for_rows(&browser, &["node2", "node3"]);
    let connected = wait_for(POLL_SLACK, || {
        (browser.eval(STATE) == "connected").then_some(())
    });
    assert!(connected.is_some(), "the page never said it was connected");
    // Survives only if the page is never reloaded.
    browser.eval("window.sameLoad = true; return null");

    assert!(lan.stop("node2"));
    wait_for_rows(&browser, &["node3"]);
    lan.add("node4", &[]).expect("the namespace exists");
    wait_for_rows(&browser, &["node3", "node4"]);
    assert_eq!(
        browser.eval("return window.sameLoad === true"),
        Value::Bool(true)
    );
    if let Some(path) = std::env::var_os("PEERD_SCREENSHOT") {
        browser.screenshot(std::path::Path::new(&path));
    }

    assert!(lan.stop("node1"));
    let lost = wait_for(POLL_SLACK, || {
        (browser.eval(STATE) == "reconnecting…").then_some(())
    });
    assert!(
        lost.is_some(),
        "the page did not show that it lost the agent"
    );
}
