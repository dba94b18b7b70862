//! The `load-generator` function's executable (shipped as its `bootstrap`): [`functions::load_generator`].

fn main() -> Result<(), functions::Error> {
    functions::start("load-generator", functions::load_generator::run)
}
