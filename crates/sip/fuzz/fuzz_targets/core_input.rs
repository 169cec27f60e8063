//! Fuzz target: feed arbitrary datagrams (split at NUL bytes) to the proxy core with a fake clock.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    callopt_sip::fuzzing::core_input(data);
});
