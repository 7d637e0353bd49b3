#![no_main]
//! Fuzzes the syslog reader (each line to its program's reader): any input, line by line, then `finish`; no panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = callmeter_formats::fuzzing::run("syslog", data);
});
