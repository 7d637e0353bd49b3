#![no_main]
//! Fuzzes the reader of a webhook target's HTTP/1.1 answers: any bytes, in
//! pieces, two exchanges on a kept connection; no panic, no body past its bound.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    callmeter_webhooks::fuzzing::run(data);
});
