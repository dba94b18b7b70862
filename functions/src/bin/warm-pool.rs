//! The `warm-pool` function's executable (shipped as its `bootstrap`): [`functions::warm_pool`].

fn main() -> Result<(), functions::Error> {
    functions::start("warm-pool", functions::warm_pool::run)
}
