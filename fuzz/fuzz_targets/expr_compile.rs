//! Any text as a flow expression: compiling never panics, and what compiles evaluates
//! (on an object without attributes) without panicking.
#![no_main]

use bridgehead::model::{Dn, ValueSet};
use bridgehead::rules::expr::{AttrSource, CompileContext, Expr};
use libfuzzer_sys::fuzz_target;

struct Empty;

impl AttrSource for Empty {
    fn get(&self, _name: &str) -> Option<&ValueSet> {
        None
    }
    fn dn(&self) -> Option<&Dn> {
        None
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(e) = Expr::compile(text, &CompileContext::default()) {
        let _ = e.eval(&Empty, 1_800_000_000);
    }
});
