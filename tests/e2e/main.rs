//! End-to-end tests of the browser UI in real headless Chromium, driven
//! over WebDriver (chromedriver). They need Debian's `chromium` and
//! `chromium-driver`; `.ci/run` installs them and sets
//! `CHATS3_REQUIRE_BROWSER=1`, so there a missing browser fails the run.
//! Elsewhere, without the browser, each test says so and passes.

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

mod browser;
mod chat;
mod docs;
mod embed;
mod proxy;
mod resilience;
mod room;
mod search;
mod transport;
