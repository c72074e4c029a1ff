use sextant::{Context, ServiceError};

struct Arith;

#[sextant::service]
impl Arith {
    async fn mul(&self, _cx: Context, a: i64, b: i64) -> Result<i64, ServiceError> {
        Ok(a * b)
    }
}

fn main() {}
