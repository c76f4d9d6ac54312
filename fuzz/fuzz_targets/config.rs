//! Configuration parsing: any file text gives a configuration or one line
//! saying what is wrong, never a panic.
#![no_main]

use chats3::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = Config::from_toml(text) {
        assert!(!error.contains('\n'), "{error}");
    }
});
