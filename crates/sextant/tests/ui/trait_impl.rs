struct Arith;

trait Calc {
    fn mul(&self) -> i64;
}

#[sextant::service]
impl Calc for Arith {
    fn mul(&self) -> i64 {
        0
    }
}

fn main() {}
