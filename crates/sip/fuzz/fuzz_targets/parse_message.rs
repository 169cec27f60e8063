//! Fuzz target: parse arbitrary bytes as a SIP message and, on success, apply every proxy edit.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    callopt_sip::fuzzing::parse_message(data);
});
