#![no_main]
//! Fuzzes format detection: any input, line by line, then `finish`; no panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = callmeter_formats::fuzzing::run("detect", data);
});
