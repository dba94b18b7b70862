//! The `traffic-validator` function's executable (shipped as its `bootstrap`): [`functions::traffic_validator`].

fn main() -> Result<(), functions::Error> {
    functions::start("traffic-validator", functions::traffic_validator::run)
}
