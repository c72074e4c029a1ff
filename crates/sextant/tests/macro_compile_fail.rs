//! A handler with a bad signature, or types that cannot be encoded, fails to compile.

#[test]
fn bad_service_definitions_do_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
