use sextant::{Context, ServiceError};

struct Counter;

#[sextant::service]
impl Counter {
    async fn incr(&mut self, _cx: Context, n: i64) -> Result<i64, ServiceError> {
        Ok(n + 1)
    }
}

fn main() {}
