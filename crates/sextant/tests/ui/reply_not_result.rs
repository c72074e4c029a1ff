use sextant::Context;

struct Arith;

#[sextant::service]
impl Arith {
    async fn mul(&self, _cx: Context, a: i64) -> i64 {
        a * 2
    }
}

fn main() {}
