use sextant::{Context, ServiceError};

/// Neither serde nor a wrapper: cannot be decoded from a payload.
struct Args {
    a: i64,
}

struct Arith;

#[sextant::service]
impl Arith {
    async fn mul(&self, _cx: Context, args: Args) -> Result<i64, ServiceError> {
        Ok(args.a)
    }
}

fn main() {}
